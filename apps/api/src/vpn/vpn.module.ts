import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DevicesModule } from '../devices/devices.module';
import { GatewaysModule } from '../gateways/gateways.module';
import { InstancesModule } from '../instances/instances.module';
import { DeviceOperation } from './device-operation.entity';
import { DeviceVpnStatus } from './device-vpn-status.entity';
import { VpnCommandService } from './vpn-command.service';
import { VpnController } from './vpn.controller';
import { VpnService } from './vpn.service';
import { OperationsRepository } from './operations.repository';
import { OperationsReaper } from './operations-reaper';
import { VpnStatusIngest } from './vpn-status.ingest';
import { VpnStatusStore } from './vpn-status.store';
import { ConnectionResync } from './connection-resync';

@Module({
  imports: [
    TypeOrmModule.forFeature([DeviceOperation, DeviceVpnStatus]),
    DevicesModule,
    GatewaysModule,
    InstancesModule,
  ],
  controllers: [VpnController],
  providers: [
    VpnService,
    VpnCommandService,
    VpnStatusStore,
    VpnStatusIngest,
    OperationsRepository,
    OperationsReaper,
    ConnectionResync,
  ],
})
export class VpnModule {}
