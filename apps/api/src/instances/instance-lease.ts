import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { InstancesRepository } from './instances.repository';

/**
 * This API process's lease in `api_instance` (docs/scale-out.md): a random id per process,
 * registered before the app serves anything and renewed every `INSTANCE_HEARTBEAT_MS` for
 * `INSTANCE_LEASE_MS`. Operations record the id; when the process dies without closing them, a
 * surviving instance does once the lease has expired. A renewal that fails (database away) is
 * retried on the next beat; a lease found gone (this process stalled longer than the lease and was
 * reaped) is taken again under the same id.
 */
@Injectable()
export class InstanceLease implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('InstanceLease');
  readonly id = randomUUID();
  private timer?: NodeJS.Timeout;
  private released = false;
  private renewing?: Promise<unknown>;

  constructor(
    private readonly instances: InstancesRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  get heartbeatMs(): number {
    return this.config.instanceHeartbeatMs;
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.renew();
    this.logger.log(
      `instance ${this.id} registered (lease ${this.config.instanceLeaseMs} ms, renewed every ${this.heartbeatMs} ms)`,
    );
    this.timer = setInterval(() => {
      if (this.renewing) return;
      this.renewing = this.renew()
        .then(
          (existed) => {
            if (!existed && !this.released)
              this.logger.warn(`instance ${this.id}: the lease had expired and was taken again`);
          },
          (err: unknown) => this.logger.warn({ err }, `instance ${this.id}: lease renewal failed`),
        )
        .finally(() => (this.renewing = undefined));
    }, this.heartbeatMs);
    this.timer.unref();
  }

  /**
   * Ends the lease: called by the command service once this instance's operations are closed,
   * and at the latest when the app shuts down. Idempotent.
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    // A renewal still in flight would otherwise write the row back after the delete.
    await this.renewing;
    try {
      await this.instances.remove(this.id);
    } catch (err) {
      // The lease then simply expires and a survivor removes the row.
      this.logger.warn({ err }, `instance ${this.id}: could not remove its lease`);
    }
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.release();
  }

  private renew(): Promise<boolean> {
    return this.instances.renew(
      { id: this.id, mqttClientId: this.config.mqttClientId, host: hostname() },
      this.config.instanceLeaseMs,
    );
  }
}
