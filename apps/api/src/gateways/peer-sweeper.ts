import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
} from '@nestjs/common';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { ExclusiveInterval } from '../common/exclusive-interval';
import { DevicePeers } from './device-peers.service';
import { GatewayPeerRepository } from './gateway-peer.repository';
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
  private readonly interval: ExclusiveInterval;

  constructor(
    private readonly peers: GatewayPeerRepository,
    private readonly devicePeers: DevicePeers,
    private readonly sync: GatewaySyncService,
    dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    this.interval = new ExclusiveInterval(
      dataSource,
      SWEEP_LOCK,
      config.vpnSweepIntervalMs,
      () => this.sweep(),
      this.logger,
    );
  }

  onApplicationBootstrap(): void {
    this.interval.start();
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.interval.stop();
  }

  /** Exposed for tests: one sweep now (in this instance, whatever the lock). */
  async sweep(): Promise<void> {
    const devices = await this.peers.unreachableDevices(this.config.vpnPeerGraceSeconds);
    for (const deviceId of devices) await this.devicePeers.detach(deviceId, undefined, 'unreachable');
    if (devices.length > 0) {
      this.logger.log(
        { devices: devices.length },
        'removed the peers of devices unreachable past the grace period',
      );
    }
    await this.sync.kickLagging();
  }
}
