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
import { LoginThrottle } from './login-throttle';
import { TokensRepository } from './tokens.repository';

/** Advisory lock that lets one API instance at a time purge. */
const PURGE_LOCK = 0x56_54_4b_50; // "VTKP"

/**
 * Deletes what authentication leaves behind, in one API instance at a time: access_token rows
 * that are expired (or revoked and expired) and sign-in failure counters whose window is over.
 * Every sign-in adds a row, so without it the table grows without bound.
 */
@Injectable()
export class TokenPurger implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('TokenPurger');
  private readonly interval: ExclusiveInterval;

  constructor(
    tokens: TokensRepository,
    throttle: LoginThrottle,
    dataSource: DataSource,
    @Inject(APP_CONFIG) config: AppConfig,
  ) {
    this.interval = new ExclusiveInterval(
      dataSource,
      PURGE_LOCK,
      config.tokenPurgeIntervalMs,
      async () => {
        const purgedTokens = await tokens.purgeExpired();
        const purgedCounters = await throttle.purge();
        if (purgedTokens || purgedCounters) {
          this.logger.debug({ purgedTokens, purgedCounters }, 'purged expired tokens and sign-in counters');
        }
      },
      this.logger,
    );
  }

  onApplicationBootstrap(): void {
    this.interval.start();
  }

  beforeApplicationShutdown(): Promise<void> {
    return this.interval.stop();
  }

  /** Purges now (unless another instance is purging); true when it ran here. */
  runOnce(): Promise<boolean> {
    return this.interval.runOnce();
  }
}
