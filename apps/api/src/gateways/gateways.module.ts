import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AccountsModule } from '../accounts/accounts.module';
import { DevicePeers } from './device-peers.service';
import { GatewayBrokerAuth } from './gateway-broker-auth';
import { GatewayLinkHandler } from './gateway-link.handler';
import { GatewayPeer } from './gateway-peer.entity';
import { GatewayPeerRepository } from './gateway-peer.repository';
import { GatewaySyncService } from './gateway-sync.service';
import { Gateway } from './gateway.entity';
import { GatewayRepository } from './gateway.repository';
import { GatewaysController } from './gateways.controller';
import { GatewaysService } from './gateways.service';
import { PeerSweeper } from './peer-sweeper';

/** VPN gateways: the registry, their desired peer state and the publisher that applies it. */
@Module({
  imports: [TypeOrmModule.forFeature([Gateway, GatewayPeer]), AccountsModule],
  controllers: [GatewaysController],
  providers: [
    GatewaysService,
    GatewayRepository,
    GatewayPeerRepository,
    GatewaySyncService,
    GatewayLinkHandler,
    GatewayBrokerAuth,
    PeerSweeper,
    DevicePeers,
  ],
  exports: [DevicePeers, GatewayRepository, GatewayPeerRepository, GatewaySyncService],
})
export class GatewaysModule {}
