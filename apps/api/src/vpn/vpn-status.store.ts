import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { VpnStatusReport } from '@app/protocol';
import {
  TOKEN_PRINCIPAL_COLUMNS,
  TOKEN_PRINCIPAL_FROM,
  toTokenPrincipalRow,
  type TokenPrincipalRow,
  type TokenPrincipalSqlRow,
} from '../auth/tokens.repository';
import { preparedQuery } from '../database/prepared-query';

export interface StoredVpnStatus {
  deviceId: string;
  scopeId: string;
  connected: boolean;
  ipAddress: string;
  status: string;
  statusCode: string;
  reportedOn: Date;
}

export interface StoredStatusRow {
  device_id: string;
  scope_id: string;
  connected: boolean;
  ip_address: string;
  status: string;
  status_code: string;
  reported_on: Date;
}

export const toStored = (r: StoredStatusRow): StoredVpnStatus => ({
  deviceId: r.device_id,
  scopeId: r.scope_id,
  connected: r.connected,
  ipAddress: r.ip_address,
  status: r.status,
  statusCode: r.status_code,
  reportedOn: r.reported_on,
});

/**
 * Everything the status route answers for one device: its link to the broker, its last report
 * (null before the first), and its peer on a gateway (null when it has none).
 */
export interface DeviceStatusView {
  connectionStatus: string;
  /** The agent announced a WireGuard key: the device tunnels through a gateway. */
  keyed: boolean;
  reported: {
    connected: boolean | null;
    ipAddress: string | null;
    status: string | null;
    statusCode: string | null;
    reportedOn: Date;
  } | null;
  vpnSubnet: string;
  peer: { gatewayId: string; lastHandshakeOn: Date | null; rxBytes: number; txBytes: number } | null;
}

/** The columns of a DeviceStatusView, over device d, its account `account`, device_vpn_status s and gateway_peer p. */
const viewColumns = (account: string): string => `d.connection_status, d.vpn_public_key IS NOT NULL AS keyed,
       s.connected, s.ip_address, s.status, s.status_code, s.reported_on,
       p.gateway_id, ${account}.vpn_subnet::text AS vpn_subnet, p.last_handshake_on, p.rx_bytes, p.tx_bytes`;

function toView(row: ViewRow): DeviceStatusView {
  return {
    connectionStatus: row.connection_status,
    keyed: row.keyed,
    reported: row.reported_on
      ? {
          connected: row.connected,
          ipAddress: row.ip_address,
          status: row.status,
          statusCode: row.status_code,
          reportedOn: row.reported_on,
        }
      : null,
    vpnSubnet: row.vpn_subnet,
    peer: row.gateway_id
      ? {
          gatewayId: row.gateway_id,
          lastHandshakeOn: row.last_handshake_on,
          rxBytes: Number(row.rx_bytes ?? 0),
          txBytes: Number(row.tx_bytes ?? 0),
        }
      : null,
  };
}

interface ViewRow {
  connection_status: string;
  keyed: boolean;
  connected: boolean | null;
  ip_address: string | null;
  status: string | null;
  status_code: string | null;
  reported_on: Date | null;
  gateway_id: string | null;
  vpn_subnet: string;
  last_handshake_on: Date | null;
  rx_bytes: string | null;
  tx_bytes: string | null;
}

/** One status report of device (account name, clientId), as received. */
export interface VpnStatusUpdate {
  account: string;
  clientId: string;
  report: VpnStatusReport;
  sentOn: Date | null;
}

/**
 * The common table expressions that apply reports ($1–$9, see `applyParams`): the reports, one per
 * device, as arrays unnested into rows; a device matches through its account name and client id
 * (an unknown one simply matches nothing). `dev` also holds the statement's snapshot of the stored
 * status (`prev_*`), which is why a device may appear only once per statement. `up` holds the rows stored. Shared
 * with the statement that closes a command's operation together with the status its device
 * reported (OperationsRepository.finish).
 */
export const APPLY_STATUS_CTES = `input AS (
     SELECT * FROM unnest($1::text[], $2::text[], $3::boolean[], $4::text[], $5::text[], $6::text[], $7::text[],
                          $8::bigint[], $9::timestamptz[])
         AS i(account, client_id, connected, ip_address, status, status_code, boot_id, seq, sent_on)),
   dev AS (
     -- With the status stored before this statement (all its parts see the same snapshot).
     SELECT d.id, d.scope_id, i.*, s.device_id IS NOT NULL AS had_status, s.connected AS prev_connected,
            s.ip_address AS prev_ip_address, s.status AS prev_status, s.status_code AS prev_status_code
       FROM input i
       JOIN account a ON a.name = i.account
       JOIN device d ON d.scope_id = a.id AND d.client_id = i.client_id
       LEFT JOIN device_vpn_status s ON s.device_id = d.id),
   up AS (
     INSERT INTO device_vpn_status AS s (device_id, scope_id, connected, ip_address, status, status_code, boot_id, seq, reported_on)
     SELECT dev.id, dev.scope_id, dev.connected, dev.ip_address, dev.status, dev.status_code, dev.boot_id, dev.seq, now()
       FROM dev
     ON CONFLICT (device_id) DO UPDATE
        SET connected = EXCLUDED.connected, ip_address = EXCLUDED.ip_address, status = EXCLUDED.status,
            status_code = EXCLUDED.status_code, boot_id = EXCLUDED.boot_id, seq = EXCLUDED.seq,
            reported_on = EXCLUDED.reported_on
      WHERE s.boot_id <> EXCLUDED.boot_id OR s.seq < EXCLUDED.seq
     RETURNING s.device_id, s.scope_id, s.connected, s.ip_address, s.status, s.status_code, s.boot_id, s.seq, s.reported_on),
   ev AS (
     INSERT INTO device_event (scope_id, device_id, type, sent_on, details)
     SELECT up.scope_id, up.device_id, 'VPN_STATUS', dev.sent_on,
            jsonb_build_object('connected', up.connected, 'ipAddress', up.ip_address, 'status', up.status,
                               'statusCode', up.status_code, 'bootId', up.boot_id, 'seq', up.seq)
       FROM up JOIN dev ON dev.id = up.device_id
      WHERE NOT dev.had_status OR dev.prev_connected <> up.connected
         OR dev.prev_ip_address <> up.ip_address OR dev.prev_status <> up.status
         -- A new code is a new status too (an error turning into another); the fleet ETag counts on it.
         OR dev.prev_status_code <> up.status_code)`;

/** The columns of a StoredVpnStatus, from the `up` of APPLY_STATUS_CTES. */
export const STORED_STATUS_COLUMNS =
  'up.device_id, up.scope_id, up.connected, up.ip_address, up.status, up.status_code, up.reported_on';

const APPLY_SQL = `WITH ${APPLY_STATUS_CTES}
   SELECT ${STORED_STATUS_COLUMNS} FROM up`;

/** Up to this many reports, APPLY_SQL runs as a prepared statement (see applyMany). */
const PREPARED_APPLY_MAX = 8;

/** The parameters $1–$9 of APPLY_STATUS_CTES for reports of distinct devices. */
export function applyParams(updates: readonly VpnStatusUpdate[]): unknown[] {
  return [
    updates.map((u) => u.account),
    updates.map((u) => u.clientId),
    updates.map((u) => u.report.connected),
    updates.map((u) => u.report.ipAddress),
    updates.map((u) => u.report.status),
    updates.map((u) => u.report.statusCode),
    updates.map((u) => u.report.bootId),
    updates.map((u) => u.report.seq),
    updates.map((u) => u.sentOn),
  ];
}

/**
 * The repository of device VPN status: every SQL statement about device_vpn_status. Persists VPN
 * status reports with the ordering rule of docs/protocol.md applied in
 * the database, atomically per row: a report replaces the stored one only if it
 * comes from another boot or has a higher seq in the same boot. A change of
 * connected/status/ip/statusCode is also recorded as a VPN_STATUS device event. One round
 * trip per batch of reports.
 */
@Injectable()
export class VpnStatusStore {
  constructor(private readonly dataSource: DataSource) {}

  /** Applies a report for device (account name, clientId); null when the device is unknown or the report is stale. */
  async apply(
    account: string,
    clientId: string,
    report: VpnStatusReport,
    sentOn: Date | null,
  ): Promise<StoredVpnStatus | null> {
    const [stored] = await this.applyMany([{ account, clientId, report, sentOn }]);
    return stored ?? null;
  }

  /**
   * Applies the reports in order, each device's in the order given; returns the statuses that were
   * stored (unknown devices and stale reports are left out). One statement when no device appears
   * twice, otherwise one statement per round of distinct devices.
   */
  async applyMany(updates: readonly VpnStatusUpdate[]): Promise<StoredVpnStatus[]> {
    const rounds: VpnStatusUpdate[][] = [];
    const seen = new Map<string, number>();
    for (const u of updates) {
      const key = `${u.account}/${u.clientId}`;
      const round = seen.get(key) ?? 0;
      seen.set(key, round + 1);
      (rounds[round] ??= []).push(u);
    }
    const stored: StoredVpnStatus[] = [];
    for (const round of rounds) {
      // A few reports: a prepared statement (planned once per connection). A batch: planned for
      // its size each time, since the generic plan of a prepared statement, made for any array
      // length, took 3× as long for 200 reports (2.3 vs 6.6 ms) while planning costs under 1 ms.
      const rows =
        round.length <= PREPARED_APPLY_MAX
          ? await preparedQuery<StoredStatusRow>(
              this.dataSource,
              'vpn_status_apply',
              APPLY_SQL,
              applyParams(round),
            )
          : await this.dataSource.query<StoredStatusRow[]>(APPLY_SQL, applyParams(round));
      for (const r of rows) stored.push(toStored(r));
    }
    return stored;
  }

  /**
   * The status view of a device of the scope, in one query of primary-key lookups (this is what
   * fleet dashboards poll); null when the scope has no such device.
   */
  async view(scopeId: string, deviceId: string): Promise<DeviceStatusView | null> {
    const rows: ViewRow[] = await this.dataSource.query(
      `SELECT ${viewColumns('a')}
         FROM device d
         JOIN account a ON a.id = d.scope_id
         LEFT JOIN device_vpn_status s ON s.device_id = d.id
         LEFT JOIN gateway_peer p ON p.device_id = d.id AND NOT p.removed
        WHERE d.id = $1 AND d.scope_id = $2`,
      [deviceId, scopeId],
    );
    return rows[0] ? toView(rows[0]) : null;
  }

  /**
   * The status route's one round trip: the bearer token's row (TOKEN_PRINCIPAL_COLUMNS, read as
   * it is now) with the path of the account the caller names (`scopeId`, null = the token's own)
   * and, when that account lies in the token's subtree, the status view of its device `deviceId`
   * (null: no such device there). Null when the token does not exist. A prepared statement: it is
   * parsed and planned once per connection.
   */
  async viewWithToken(
    tokenId: string,
    scopeId: string | null,
    deviceId: string | null,
  ): Promise<{ token: TokenPrincipalRow; scopePath: string | null; view: DeviceStatusView | null } | null> {
    const rows = await preparedQuery<TokenPrincipalSqlRow & { scope_path: string | null } & Partial<ViewRow>>(
      this.dataSource,
      'vpn_status_with_token',
      `SELECT ${TOKEN_PRINCIPAL_COLUMNS}, sa.path AS scope_path, v.*
         FROM ${TOKEN_PRINCIPAL_FROM}
         LEFT JOIN account sa ON sa.id = COALESCE($2::uuid, t.scope_id)
         LEFT JOIN LATERAL (
           SELECT ${viewColumns('sa')}
             FROM device d
             LEFT JOIN device_vpn_status s ON s.device_id = d.id
             LEFT JOIN gateway_peer p ON p.device_id = d.id AND NOT p.removed
            WHERE d.id = $3::uuid AND d.scope_id = sa.id AND starts_with(sa.path, a.path)) v ON true
        WHERE t.id = $1`,
      [tokenId, scopeId, deviceId],
    );
    const row = rows[0];
    if (!row) return null;
    return {
      token: toTokenPrincipalRow(row),
      scopePath: row.scope_path,
      view: row.connection_status ? toView(row as ViewRow) : null,
    };
  }

  async get(deviceId: string): Promise<StoredVpnStatus | null> {
    const rows: StoredStatusRow[] = await this.dataSource.query(
      `SELECT device_id, scope_id, connected, ip_address, status, status_code, reported_on
         FROM device_vpn_status WHERE device_id = $1`,
      [deviceId],
    );
    return rows[0] ? toStored(rows[0]) : null;
  }
}
