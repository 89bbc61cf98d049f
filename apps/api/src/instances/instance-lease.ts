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
 *
 * The oldest live instance is the leader: it alone does what must happen once for all replicas
 * (see onLeadership). Leadership moves at a renewal, so a dead leader is replaced within the lease
 * plus one heartbeat; an instance that stalls longer than its lease may briefly share it.
 */
@Injectable()
export class InstanceLease implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('InstanceLease');
  readonly id = randomUUID();
  private timer?: NodeJS.Timeout;
  private released = false;
  private renewing?: Promise<unknown>;
  private leader = false;
  private readonly leadershipListeners: Array<(leader: boolean) => Promise<void> | void> = [];

  constructor(
    private readonly instances: InstancesRepository,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  get heartbeatMs(): number {
    return this.config.instanceHeartbeatMs;
  }

  /**
   * Calls `listener(true)` when this instance becomes the leader and `listener(false)` when it
   * stops being it (another instance is older, or its lease was lost).
   */
  onLeadership(listener: (leader: boolean) => Promise<void> | void): void {
    this.leadershipListeners.push(listener);
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.renew();
    await this.checkLeadership();
    this.logger.log(
      `instance ${this.id} registered (lease ${this.config.instanceLeaseMs} ms, renewed every ${this.heartbeatMs} ms)`,
    );
    this.timer = setInterval(() => {
      this.renewing ??= this.beat().finally(() => (this.renewing = undefined));
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

  /** One heartbeat: renew, then see who leads. Never rejects: a failure waits for the next beat. */
  private async beat(): Promise<void> {
    try {
      const existed = await this.renew();
      if (!existed && !this.released)
        this.logger.warn(`instance ${this.id}: the lease had expired and was taken again`);
      await this.checkLeadership();
    } catch (err) {
      this.logger.warn({ err }, `instance ${this.id}: lease renewal failed`);
    }
  }

  private async checkLeadership(): Promise<void> {
    const leader = !this.released && (await this.instances.oldestLive()) === this.id;
    if (leader === this.leader) return;
    this.leader = leader;
    for (const listener of this.leadershipListeners) {
      try {
        await listener(leader);
      } catch (err) {
        this.logger.error({ err }, 'leadership change handler failed');
      }
    }
    // Logged once the duties have been taken up (or dropped).
    this.logger.log(`instance ${this.id} ${leader ? 'is now' : 'is no longer'} the leader`);
  }

  private renew(): Promise<boolean> {
    return this.instances.renew(
      { id: this.id, mqttClientId: this.config.mqttClientId, host: hostname() },
      this.config.instanceLeaseMs,
    );
  }
}
