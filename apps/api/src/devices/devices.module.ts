import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DeviceBrokerAuth } from './device-broker-auth';
import { DeviceConnectionEvents } from './device-connection.events';
import { DeviceEvent } from './device-event.entity';
import { DeviceLifecycleHandler } from './device-lifecycle.handler';
import { Device } from './device.entity';
import { DevicesController } from './devices.controller';
import { DevicesService } from './devices.service';
import { TunnelAddressPool } from './tunnel-address.pool';

@Module({
  imports: [TypeOrmModule.forFeature([Device, DeviceEvent])],
  controllers: [DevicesController],
  providers: [
    DevicesService,
    TunnelAddressPool,
    DeviceBrokerAuth,
    DeviceLifecycleHandler,
    DeviceConnectionEvents,
  ],
  exports: [DevicesService, DeviceConnectionEvents],
})
export class DevicesModule {}
