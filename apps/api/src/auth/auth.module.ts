import { createSecretKey } from 'node:crypto';
import { Module } from '@nestjs/common';
import { JwtModule } from '@nestjs/jwt';
import { TypeOrmModule } from '@nestjs/typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AccountsModule } from '../accounts/accounts.module';
import { ApiKey } from '../apikeys/api-key.entity';
import { User } from '../users/user.entity';
import { AccessToken } from './access-token.entity';
import { AuthController } from './auth.controller';
import { AuthGuard } from './auth.guard';
import { AuthService } from './auth.service';
import { FirstStartService } from './first-start.service';
import { LoginThrottle } from './login-throttle';
import { TokenPurger } from './token-purger';
import { TokenService } from './token.service';

@Module({
  imports: [
    TypeOrmModule.forFeature([AccessToken, User, ApiKey]),
    AccountsModule,
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
  providers: [TokenService, AuthService, LoginThrottle, AuthGuard, FirstStartService, TokenPurger],
  exports: [TokenService, AuthGuard, AuthService],
})
export class AuthModule {}
