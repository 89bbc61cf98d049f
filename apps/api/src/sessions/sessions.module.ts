import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthModule } from '../auth/auth.module';
import { GatewaysModule } from '../gateways/gateways.module';
import { SessionSweeper } from './session-sweeper';
import { DeviceSessionsController, VpnScopeController } from './sessions.controller';
import { VpnSession } from './vpn-session.entity';
import { VpnSessionRepository } from './vpn-session.repository';
import { VpnSessionsService } from './vpn-sessions.service';

/** Engineers' VPN sessions: the REST routes, the audit trail, liveness and expiry. */
@Module({
  imports: [TypeOrmModule.forFeature([VpnSession]), GatewaysModule, AuthModule],
  controllers: [DeviceSessionsController, VpnScopeController],
  providers: [VpnSessionRepository, VpnSessionsService, SessionSweeper],
  exports: [VpnSessionRepository, VpnSessionsService],
})
export class SessionsModule {}
