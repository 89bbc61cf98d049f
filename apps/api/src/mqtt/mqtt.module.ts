import { Global, Module } from '@nestjs/common';
import { BrokerCredentials } from './broker-credentials';
import { CloudMqttClient } from './cloud-mqtt.client';
import { ConnectionEvents } from './connection-events';
import { EmbeddedBroker } from './embedded-broker';
import { KuraRequestClient } from './kura-request.client';
import { MqttRouter } from './mqtt-router';
import { EdgeCredentials } from './edge-credentials';
import { DynsecControl } from './brokers/dynsec-control';
import { MosquittoDynsecBroker } from './brokers/mosquitto-dynsec';
import { EmqxAuthController, EmqxBroker } from './brokers/emqx';

/** The cloud's MQTT side: the embedded broker, the one client, the topic router, Kura requests. */
@Global()
@Module({
  providers: [
    BrokerCredentials,
    EdgeCredentials,
    EmbeddedBroker,
    // Before the broker adapters: its start-up opens the connection they wait for.
    CloudMqttClient,
    MqttRouter,
    KuraRequestClient,
    ConnectionEvents,
    DynsecControl,
    MosquittoDynsecBroker,
    EmqxBroker,
  ],
  controllers: [EmqxAuthController],
  exports: [
    BrokerCredentials,
    EdgeCredentials,
    MosquittoDynsecBroker,
    EmbeddedBroker,
    CloudMqttClient,
    MqttRouter,
    KuraRequestClient,
    ConnectionEvents,
  ],
})
export class MqttModule {}
