import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DeviceBrokerAuth } from './device-broker-auth';
import { DeviceCredentialsRepository } from './device-credentials.repository';
import { DeviceEvent } from './device-event.entity';
import { DeviceLifecycleHandler } from './device-lifecycle.handler';
import { Device } from './device.entity';
import { DevicesController } from './devices.controller';
import { DevicesService } from './devices.service';
import { TunnelAddressPool } from './tunnel-address.pool';
import { GatewaysModule } from '../gateways/gateways.module';

@Module({
  imports: [TypeOrmModule.forFeature([Device, DeviceEvent]), GatewaysModule],
  controllers: [DevicesController],
  providers: [DevicesService, TunnelAddressPool, DeviceBrokerAuth, DeviceCredentialsRepository, DeviceLifecycleHandler],
  exports: [DevicesService],
})
export class DevicesModule {}
