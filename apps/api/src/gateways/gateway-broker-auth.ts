import { Injectable, OnModuleInit } from '@nestjs/common';
import { digestEquals } from '../common/secrets';
import { isOwnMqttClientId, type BrokerIdentity } from '../mqtt/broker-identity';
import { EmbeddedBroker } from '../mqtt/embedded-broker';
import { GatewayRepository } from './gateway.repository';

/**
 * Checks gateway MQTT credentials for the embedded broker, as device credentials are checked:
 * one indexed lookup and a SHA-256 compare; the MQTT client id must be `{account}:{name}` or the
 * plain name.
 */
@Injectable()
export class GatewayBrokerAuth implements OnModuleInit {
  constructor(
    private readonly gateways: GatewayRepository,
    private readonly broker: EmbeddedBroker,
  ) {}

  onModuleInit(): void {
    this.broker.addAuthenticator((clientId, username, password) =>
      this.authenticate(clientId, username, password),
    );
  }

  async authenticate(
    mqttClientId: string,
    username: string,
    password: Buffer,
  ): Promise<BrokerIdentity | null> {
    if (username.length > 160 || password.length > 256) return null;
    const row = await this.gateways.findByMqttUsername(username);
    if (!row?.digest || !isOwnMqttClientId(mqttClientId, row.account, row.name)) return null;
    if (!digestEquals(password.toString('utf8'), row.digest)) return null;
    return { kind: 'gateway', gatewayId: row.id, account: row.account, clientId: row.name };
  }
}
