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
import { VpnSessionsService } from './vpn-sessions.service';

/** Advisory lock that lets one API instance at a time end sessions. */
const SWEEP_LOCK = 0x56_53_53_57; // "VSSW"

/**
 * Ends sessions nobody keeps alive, once across API instances: silent for 3 ping intervals,
 * principal revoked, device gone. It reads everything from the database, so an API restart
 * loses nothing: the next tick of any instance catches up.
 */
@Injectable()
export class SessionSweeper implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly interval: ExclusiveInterval;

  constructor(sessions: VpnSessionsService, dataSource: DataSource, @Inject(APP_CONFIG) config: AppConfig) {
    this.interval = new ExclusiveInterval(
      dataSource,
      SWEEP_LOCK,
      config.vpnSweepIntervalMs,
      () => sessions.sweep(),
      new Logger('SessionSweeper'),
    );
  }

  onApplicationBootstrap(): void {
    this.interval.start();
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.interval.stop();
  }
}
