import { createSecretKey } from 'node:crypto';
import { Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AccountsModule } from '../accounts/accounts.module';
import { ApiKeysModule } from '../apikeys/api-keys.module';
import { UsersModule } from '../users/users.module';
import { AuthController } from './auth.controller';
import { AuthGuard } from './auth.guard';
import { AuthService } from './auth.service';
import { LoginFailuresRepository } from './login-failures.repository';
import { LoginThrottle } from './login-throttle';
import { TokenPurger } from './token-purger';
import { TokenService } from './token.service';
import { TokensModule } from './tokens.module';

@Module({
  imports: [
    AccountsModule,
    TokensModule,
    UsersModule,
    ApiKeysModule,
    JwtModule.registerAsync({
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => ({
        // A KeyObject, not the string: given a string, jsonwebtoken first tries to parse it as a
        // PEM public key on every verify (a thrown exception), ~6 % of the CPU of a status read.
        secret: createSecretKey(Buffer.from(config.jwtSecret, 'utf8')),
        signOptions: { algorithm: 'HS256' },
        verifyOptions: { algorithms: ['HS256'] },
      }),
    }),
  ],
  controllers: [AuthController],
  providers: [TokenService, AuthService, LoginThrottle, LoginFailuresRepository, AuthGuard, TokenPurger],
  exports: [TokenService, AuthGuard, AuthService],
})
export class AuthModule {}
