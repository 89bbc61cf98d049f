import { Injectable, OnModuleInit } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { digestEquals } from '../auth/secrets';
import { isOwnMqttClientId } from '../mqtt/broker-identity';
import type { BrokerIdentity } from '../mqtt/broker-identity';
import { EdgeCredentials } from '../mqtt/edge-credentials';
import { DeviceCredentialsRepository } from './device-credentials.repository';

interface CredentialRow {
  id: string;
  client_id: string;
  status: string;
  mqtt_password_digest: Buffer | null;
  account: string;
}

/**
 * Checks device MQTT credentials for the embedded broker and EMQX's auth hook: one indexed lookup and
 * a SHA-256 compare, so a reconnect storm stays cheap. The MQTT client id must
 * be the device's `{account}:{clientId}` (recommended) or its plain clientId (Kura's default), and
 * the device must be enabled.
 */
@Injectable()
export class DeviceBrokerAuth implements OnModuleInit {
  constructor(
    private readonly dataSource: DataSource,
    private readonly edge: EdgeCredentials,
    private readonly credentials: DeviceCredentialsRepository,
  ) {}

  onModuleInit(): void {
    this.edge.addAuthenticator((clientId, username, password) =>
      this.authenticate(clientId, username, password),
    );
    this.edge.addInventory({
      kind: 'device',
      list: async () =>
        (await this.credentials.listWithCredentials()).map((d) => ({ kind: 'device' as const, ...d })),
      isEnabled: (id) => this.credentials.isEnabled(id),
    });
  }

  async authenticate(
    mqttClientId: string,
    username: string,
    password: Buffer,
  ): Promise<BrokerIdentity | null> {
    if (username.length > 160 || password.length > 256) return null;
    const rows: CredentialRow[] = await this.dataSource.query(
      `SELECT d.id, d.client_id, d.status, d.mqtt_password_digest, a.name AS account
         FROM device d JOIN account a ON a.id = d.scope_id
        WHERE d.mqtt_username = $1`,
      [username],
    );
    const row = rows[0];
    if (!row?.mqtt_password_digest || row.status !== 'ENABLED') return null;
    if (!isOwnMqttClientId(mqttClientId, row.account, row.client_id)) return null;
    if (!digestEquals(password.toString('utf8'), row.mqtt_password_digest)) return null;
    return { kind: 'device', deviceId: row.id, account: row.account, clientId: row.client_id };
  }
}
