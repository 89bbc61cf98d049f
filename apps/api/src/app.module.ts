import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_PIPE } from '@nestjs/core';
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
import { UsersModule } from './users/users.module';
import { DevicesModule } from './devices/devices.module';
import { VpnModule } from './vpn/vpn.module';
import { GatewaysModule } from './gateways/gateways.module';
import { SessionsModule } from './sessions/sessions.module';
import { FendVpnModule } from './fendvpn/fendvpn.module';

@Module({})
export class AppModule {
  /** The config is resolved before the module is built (embedded database URL, generated secrets). */
  static forRoot(config: AppConfig): DynamicModule {
    return {
      module: AppModule,
      global: true,
      imports: [
        DatabaseModule,
        MqttModule,
        HealthModule,
        AuthModule,
        AccountsModule,
        UsersModule,
        ApiKeysModule,
        GatewaysModule,
        DevicesModule,
        VpnModule,
        SessionsModule,
        FendVpnModule,
      ],
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: APP_FILTER, useClass: AppExceptionFilter },
        { provide: APP_PIPE, useFactory: createValidationPipe },
        { provide: APP_GUARD, useExisting: AuthGuard },
      ],
      exports: [APP_CONFIG],
    };
  }
}
