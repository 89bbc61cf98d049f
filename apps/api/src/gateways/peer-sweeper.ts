import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { GatewayPeerRepository, type PeerChange } from './gateway-peer.repository';
import { GatewaySyncService } from './gateway-sync.service';

/** Advisory lock that lets one API instance at a time sweep. */
const SWEEP_LOCK = 0x47_57_53_57; // "GWSW"

/**
 * Periodic upkeep of the desired state, once across API instances: a device whose MQTT link
 * and handshakes have both been gone for the grace period leaves its gateway (a brief outage
 * never cuts a working tunnel), and gateways that lag behind get another publishing turn.
 */
@Injectable()
export class PeerSweeper implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('PeerSweeper');
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly peers: GatewayPeerRepository,
    private readonly sync: GatewaySyncService,
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => {
      this.running ??= this.sweep().finally(() => (this.running = undefined));
    }, this.config.vpnSweepIntervalMs);
    this.timer.unref();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** Exposed for tests: one sweep now. */
  async sweep(): Promise<void> {
    try {
      const removed = await this.dataSource.transaction(async (em) => {
        const [lock] = await em.query<Array<{ ok: boolean }>>('SELECT pg_try_advisory_xact_lock($1) AS ok', [
          SWEEP_LOCK,
        ]);
        if (!lock.ok) return null;
        const devices = await this.peers.unreachableDevices(this.config.vpnPeerGraceSeconds);
        const changes: PeerChange[] = [];
        for (const deviceId of devices) changes.push(...(await this.peers.removeDevicePeers(deviceId, em)));
        if (devices.length > 0) {
          this.logger.log(
            { devices: devices.length },
            'removed the peers of devices unreachable past the grace period',
          );
        }
        return changes;
      });
      if (removed) this.sync.publish(removed);
      await this.sync.kickLagging();
    } catch (err) {
      this.logger.error({ err }, 'peer sweep failed');
    }
  }
}
