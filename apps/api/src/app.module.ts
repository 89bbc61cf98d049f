import { DynamicModule, Module, type Provider } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { APP_CONFIG, type AppConfig } from './config/app-config';
import { AppExceptionFilter } from './common/exception.filter';
import { createValidationPipe } from './common/validation.pipe';
import { DatabaseModule } from './database/database.module';
import { HealthModule } from './health/health.module';
import { MqttModule } from './mqtt/mqtt.module';
import { AccountsModule } from './accounts/accounts.module';
import { ApiKeysModule } from './apikeys/api-keys.module';
import { AuthGuard } from './auth/auth.guard';
import { AuthModule } from './auth/auth.module';
import { PrincipalRateLimitGuard } from './auth/rate-limit.guard';
import { FixedWindowStorage } from './auth/rate-limit.storage';
import { UsersModule } from './users/users.module';
import { SeedingModule } from './seeding/seeding.module';
import { DevicesModule } from './devices/devices.module';
import { VpnModule } from './vpn/vpn.module';
import { FleetModule } from './fleet/fleet.module';
import { GatewaysModule } from './gateways/gateways.module';
import { SessionsModule } from './sessions/sessions.module';
import { FendVpnModule } from './fendvpn/fendvpn.module';
import { EventsModule } from './events/events.module';
import { WebhooksModule } from './webhooks/webhooks.module';
import { MetricsModule } from './metrics/metrics.module';

@Module({})
export class AppModule {
  /** The config is resolved before the module is built (embedded database URL, generated secrets). */
  static forRoot(config: AppConfig): DynamicModule {
    const rateLimited = config.rateLimitPerMinute > 0;
    // After the AuthGuard (global guards run in this order): the limit is per principal.
    const rateLimit: Provider[] = rateLimited
      ? [{ provide: APP_GUARD, useClass: PrincipalRateLimitGuard }]
      : [];
    return {
      module: AppModule,
      global: true,
      imports: [
        ...(rateLimited
          ? [
              ThrottlerModule.forRoot({
                throttlers: [{ name: 'default', ttl: 60_000, limit: config.rateLimitPerMinute }],
                setHeaders: false,
                storage: new FixedWindowStorage(),
              }),
            ]
          : []),
        DatabaseModule,
        MqttModule,
        MetricsModule,
        HealthModule,
        AuthModule,
        AccountsModule,
        UsersModule,
        ApiKeysModule,
        SeedingModule,
        GatewaysModule,
        DevicesModule,
        VpnModule,
        FleetModule,
        SessionsModule,
        FendVpnModule,
        EventsModule,
        WebhooksModule,
      ],
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: APP_FILTER, useClass: AppExceptionFilter },
        { provide: APP_PIPE, useFactory: createValidationPipe },
        { provide: APP_GUARD, useExisting: AuthGuard },
        ...rateLimit,
      ],
      exports: [APP_CONFIG],
    };
  }
}
