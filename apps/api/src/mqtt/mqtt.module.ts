import { Global, Module } from '@nestjs/common';
import { BrokerCredentials } from './broker-credentials';
import { CloudMqttClient } from './cloud-mqtt.client';
import { ConnectionEvents } from './connection-events';
import { EmbeddedBroker } from './embedded-broker';
import { KuraRequestClient } from './kura-request.client';
import { MqttRouter } from './mqtt-router';

/** The cloud's MQTT side: the embedded broker, the one client, the topic router, Kura requests. */
@Global()
@Module({
  providers: [
    BrokerCredentials,
    EmbeddedBroker,
    CloudMqttClient,
    MqttRouter,
    KuraRequestClient,
    ConnectionEvents,
  ],
  exports: [
    BrokerCredentials,
    EmbeddedBroker,
    CloudMqttClient,
    MqttRouter,
    KuraRequestClient,
    ConnectionEvents,
  ],
})
export class MqttModule {}
