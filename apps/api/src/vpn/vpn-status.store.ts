import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { VpnStatusReport } from '@app/protocol';

export interface StoredVpnStatus {
  deviceId: string;
  scopeId: string;
  connected: boolean;
  ipAddress: string;
  status: string;
  statusCode: string;
  reportedOn: Date;
}

interface Row {
  device_id: string;
  scope_id: string;
  connected: boolean;
  ip_address: string;
  status: string;
  status_code: string;
  reported_on: Date;
}

const toStored = (r: Row): StoredVpnStatus => ({
  deviceId: r.device_id,
  scopeId: r.scope_id,
  connected: r.connected,
  ipAddress: r.ip_address,
  status: r.status,
  statusCode: r.status_code,
  reportedOn: r.reported_on,
});

/**
 * Persists VPN status reports with the ordering rule of DESIGN §6 applied in
 * the database, atomically per row: a report replaces the stored one only if it
 * comes from another boot or has a higher seq in the same boot. A change of
 * connected/status/ip is also recorded as a VPN_STATUS device event. One round trip.
 */
@Injectable()
export class VpnStatusStore {
  constructor(private readonly dataSource: DataSource) {}

  /** Applies a report for device (account name, clientId); null when the device is unknown or the report is stale. */
  async apply(
    account: string,
    clientId: string,
    r: VpnStatusReport,
    sentOn: Date | null,
  ): Promise<StoredVpnStatus | null> {
    const rows: Row[] = await this.dataSource.query(
      `WITH dev AS (
         SELECT d.id, d.scope_id FROM device d JOIN account a ON a.id = d.scope_id
          WHERE a.name = $1 AND d.client_id = $2),
       prev AS (
         SELECT s.device_id, s.connected, s.ip_address, s.status FROM device_vpn_status s JOIN dev ON s.device_id = dev.id),
       up AS (
         INSERT INTO device_vpn_status AS s (device_id, scope_id, connected, ip_address, status, status_code, boot_id, seq, reported_on)
         SELECT dev.id, dev.scope_id, $3, $4, $5, $6, $7, $8, now() FROM dev
         ON CONFLICT (device_id) DO UPDATE
            SET connected = EXCLUDED.connected, ip_address = EXCLUDED.ip_address, status = EXCLUDED.status,
                status_code = EXCLUDED.status_code, boot_id = EXCLUDED.boot_id, seq = EXCLUDED.seq,
                reported_on = EXCLUDED.reported_on
          WHERE s.boot_id <> EXCLUDED.boot_id OR s.seq < EXCLUDED.seq
         RETURNING s.device_id, s.scope_id, s.connected, s.ip_address, s.status, s.status_code, s.reported_on),
       ev AS (
         INSERT INTO device_event (scope_id, device_id, type, sent_on, details)
         SELECT up.scope_id, up.device_id, 'VPN_STATUS', $9,
                jsonb_build_object('connected', up.connected, 'ipAddress', up.ip_address, 'status', up.status,
                                   'statusCode', up.status_code, 'bootId', $7::text, 'seq', $8::bigint)
           FROM up LEFT JOIN prev ON prev.device_id = up.device_id
          WHERE prev.device_id IS NULL OR prev.connected <> up.connected
             OR prev.ip_address <> up.ip_address OR prev.status <> up.status)
       SELECT * FROM up`,
      [account, clientId, r.connected, r.ipAddress, r.status, r.statusCode, r.bootId, r.seq, sentOn],
    );
    return rows[0] ? toStored(rows[0]) : null;
  }

  async get(deviceId: string): Promise<StoredVpnStatus | null> {
    const rows: Row[] = await this.dataSource.query(
      `SELECT device_id, scope_id, connected, ip_address, status, status_code, reported_on
         FROM device_vpn_status WHERE device_id = $1`,
      [deviceId],
    );
    return rows[0] ? toStored(rows[0]) : null;
  }
}
