import { Injectable, OnModuleInit } from '@nestjs/common';
import { digestEquals } from '../common/secrets';
import { isOwnMqttClientId, type BrokerIdentity } from '../mqtt/broker-identity';
import { EdgeCredentials } from '../mqtt/edge-credentials';
import { GatewayRepository } from './gateway.repository';

/**
 * Checks gateway MQTT credentials for the embedded broker and EMQX's auth hook, as device credentials are checked:
 * one indexed lookup and a SHA-256 compare; the MQTT client id must be `{account}:{name}` or the
 * plain name.
 */
@Injectable()
export class GatewayBrokerAuth implements OnModuleInit {
  constructor(
    private readonly gateways: GatewayRepository,
    private readonly edge: EdgeCredentials,
  ) {}

  onModuleInit(): void {
    this.edge.addAuthenticator((clientId, username, password) =>
      this.authenticate(clientId, username, password),
    );
    // A gateway has no disabled state: while it exists, it may connect.
    this.edge.addInventory({
      kind: 'gateway',
      list: async () =>
        (await this.gateways.listWithCredentials()).map((g) => ({
          kind: 'gateway' as const,
          id: g.id,
          account: g.account,
          clientId: g.name,
          username: g.username,
          enabled: true,
        })),
      isEnabled: async (id) => ((await this.gateways.existsById(id)) ? true : null),
    });
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
