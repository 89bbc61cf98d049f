import { Global, Module } from '@nestjs/common';
import { CloudMqttClient } from './cloud-mqtt.client';
import { EmbeddedBroker } from './embedded-broker';

@Global()
@Module({
  providers: [EmbeddedBroker, CloudMqttClient],
  exports: [EmbeddedBroker, CloudMqttClient],
})
export class MqttModule {}
