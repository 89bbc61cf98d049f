import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

export interface DeviceCredentialRow {
  id: string;
  account: string;
  clientId: string;
  username: string;
  enabled: boolean;
}

/** Devices as an external broker sees them: who holds MQTT credentials, and whether it may connect. */
@Injectable()
export class DeviceCredentialsRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Every device with issued credentials, in all accounts (for the broker's start-up reconciliation). */
  async listWithCredentials(): Promise<DeviceCredentialRow[]> {
    const rows: Array<{
      id: string;
      account: string;
      client_id: string;
      mqtt_username: string;
      status: string;
    }> = await this.dataSource.query(
      `SELECT d.id, a.name AS account, d.client_id, d.mqtt_username, d.status
           FROM device d JOIN account a ON a.id = d.scope_id
          WHERE d.mqtt_username IS NOT NULL AND d.mqtt_password_digest IS NOT NULL`,
    );
    return rows.map((r) => ({
      id: r.id,
      account: r.account,
      clientId: r.client_id,
      username: r.mqtt_username,
      enabled: r.status === 'ENABLED',
    }));
  }

  /** Whether the device may connect (ENABLED); null when it no longer exists. */
  async isEnabled(id: string): Promise<boolean | null> {
    const rows: Array<{ status: string }> = await this.dataSource.query(
      'SELECT status FROM device WHERE id = $1',
      [id],
    );
    return rows[0] ? rows[0].status === 'ENABLED' : null;
  }
}
