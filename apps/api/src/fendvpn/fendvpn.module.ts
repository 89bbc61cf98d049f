import { Module } from '@nestjs/common';
import { AuthModule } from '../auth/auth.module';
import { GatewaysModule } from '../gateways/gateways.module';
import { SessionsModule } from '../sessions/sessions.module';
import { FendVpnController } from './fendvpn.controller';
import { FendVpnService } from './fendvpn.service';

/** FendVPN's client API over the cloud's sessions. */
@Module({
  imports: [AuthModule, GatewaysModule, SessionsModule],
  controllers: [FendVpnController],
  providers: [FendVpnService],
})
export class FendVpnModule {}
