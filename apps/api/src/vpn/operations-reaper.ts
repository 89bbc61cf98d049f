import { BeforeApplicationShutdown, Injectable, Logger, OnApplicationBootstrap } from '@nestjs/common';
import { InstanceLease } from '../instances/instance-lease';
import { InstancesRepository } from '../instances/instances.repository';
import { INTERRUPTED_LEASE_EXPIRED, OperationsRepository } from './operations.repository';

/**
 * Closes the RUNNING operations of API instances that died without closing them (SIGKILL, a lost
 * host, a partition longer than the lease): every instance runs it once per heartbeat, and the
 * row locks (SKIP LOCKED) make sure each dead instance is reaped by exactly one of them. A command
 * killed this way is FAILED with a documented message; its device takes commands again at once
 * (docs/scale-out.md).
 */
@Injectable()
export class OperationsReaper implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('OperationsReaper');
  private timer?: NodeJS.Timeout;
  private reaping?: Promise<void>;

  constructor(
    private readonly instances: InstancesRepository,
    private readonly operations: OperationsRepository,
    private readonly lease: InstanceLease,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.reaping ??= this.reap()
        .catch((err: unknown) => this.logger.warn({ err }, 'reaping expired instances failed'))
        .finally(() => (this.reaping = undefined));
    }, this.lease.heartbeatMs);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.reaping;
  }

  /** One pass: every expired instance, its RUNNING operations failed, its row deleted. */
  async reap(): Promise<void> {
    for (;;) {
      const { instances, operationsClosed } = await this.instances.reapExpired((manager, ids) =>
        this.operations.closeOfInstances(ids, INTERRUPTED_LEASE_EXPIRED, manager),
      );
      if (instances.length === 0) return;
      this.logger.warn(
        { instances, operationsClosed },
        `lease expired for ${instances.length} API instance(s): closed ${operationsClosed} operation(s) they left running`,
      );
    }
  }
}
