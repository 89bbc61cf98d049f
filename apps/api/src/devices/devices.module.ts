import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DeviceBrokerAuth } from './device-broker-auth';
import { DeviceEvent } from './device-event.entity';
import { DeviceLifecycleHandler } from './device-lifecycle.handler';
import { Device } from './device.entity';
import { DevicesController } from './devices.controller';
import { DevicesRepository } from './devices.repository';
import { DevicesService } from './devices.service';
import { TunnelAddressPool } from './tunnel-address.pool';
import { AccountsModule } from '../accounts/accounts.module';
import { GatewaysModule } from '../gateways/gateways.module';
import { InstancesModule } from '../instances/instances.module';

@Module({
  imports: [TypeOrmModule.forFeature([Device, DeviceEvent]), GatewaysModule, AccountsModule, InstancesModule],
  controllers: [DevicesController],
  providers: [DevicesService, DevicesRepository, TunnelAddressPool, DeviceBrokerAuth, DeviceLifecycleHandler],
  exports: [DevicesService, DevicesRepository, DeviceLifecycleHandler],
})
export class DevicesModule {}
