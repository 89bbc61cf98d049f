import { Injectable, OnModuleInit } from '@nestjs/common';
import { digestEquals } from '../common/secrets';
import { isOwnMqttClientId } from '../mqtt/broker-identity';
import type { BrokerIdentity } from '../mqtt/broker-identity';
import { EdgeCredentials } from '../mqtt/edge-credentials';
import { DevicesRepository } from './devices.repository';

/**
 * Checks device MQTT credentials for the embedded broker and EMQX's auth hook: one indexed lookup and
 * a SHA-256 compare, so a reconnect storm stays cheap. The MQTT client id must
 * be the device's `{account}:{clientId}` (recommended) or its plain clientId (Kura's default), and
 * the device must be enabled.
 */
@Injectable()
export class DeviceBrokerAuth implements OnModuleInit {
  constructor(
    private readonly devices: DevicesRepository,
    private readonly edge: EdgeCredentials,
  ) {}

  onModuleInit(): void {
    this.edge.addAuthenticator((clientId, username, password) =>
      this.authenticate(clientId, username, password),
    );
    this.edge.addInventory({
      kind: 'device',
      list: async () =>
        (await this.devices.listWithCredentials()).map((d) => ({ kind: 'device' as const, ...d })),
      isEnabled: (id) => this.devices.isEnabled(id),
    });
  }

  async authenticate(
    mqttClientId: string,
    username: string,
    password: Buffer,
  ): Promise<BrokerIdentity | null> {
    if (username.length > 160 || password.length > 256) return null;
    const device = await this.devices.findByMqttUsername(username);
    if (!device?.digest || device.status !== 'ENABLED') return null;
    if (!isOwnMqttClientId(mqttClientId, device.account, device.clientId)) return null;
    if (!digestEquals(password.toString('utf8'), device.digest)) return null;
    return { kind: 'device', deviceId: device.id, account: device.account, clientId: device.clientId };
  }
}
