import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, Repository, type EntityManager } from 'typeorm';
import type { BirthCertificate } from '@app/protocol';
import { AppError } from '../common/app-error';
import { isUniqueViolation } from '../common/db-errors';
import { updateWithOptlock } from '../common/optlock';
import { Device, type ConnectionStatus, type DeviceStatus } from './device.entity';
import { isoTime, nextCursorJson } from '../database/sql-json';
import type { ListCursor } from '../common/list-cursor';

/** The fields of a new device; the caller has allocated its tunnel address. */
export interface NewDevice {
  clientId: string;
  displayName: string;
  status: DeviceStatus;
  gatewayId: string | null;
  tunnelIp: string;
  createdBy: string | null;
}

/** What an update through the API may change. */
export type DeviceChanges = Partial<Pick<Device, 'displayName' | 'status' | 'gatewayId' | 'modifiedBy'>>;

/** What the broker needs to check a device's MQTT login. */
export interface DeviceCredentials {
  id: string;
  clientId: string;
  status: string;
  digest: Buffer | null;
  account: string;
}

/** One lifecycle message (BIRTH, DC, LWT) as the device row and its event record it. */
export interface LifecycleUpdate {
  connectionStatus: ConnectionStatus;
  eventType: 'BIRTH' | 'DC' | 'LWT';
  birth: BirthCertificate | undefined;
  sentOn: Date | null;
  details: Record<string, unknown>;
  /** Apply only to a device in this connection status (e.g. a silent cut applies only to CONNECTED). */
  onlyFrom?: ConnectionStatus;
}

/**
 * A connection status learnt without a lifecycle message: any message of a device proves it is
 * CONNECTED, a closed connection without a will means DISCONNECTED, and no answer to the status
 * request after a restart (and nothing else heard since `silentSince`) means MISSING.
 */
export interface InferredConnection {
  connectionStatus: ConnectionStatus;
  /** Only a device whose stored status is one of these changes. */
  from: ConnectionStatus[];
  /** The lifecycle event it stands for (fleet streams and webhooks read connection changes from these). */
  eventType: 'BIRTH' | 'DC' | 'LWT';
  inferredFrom: string;
  /** Only a device with no lifecycle event since then changes. */
  silentSince?: Date;
}

/** A device's current connection and VPN state, as a fleet event stream's reset sends it. */
export interface DeviceState {
  deviceId: string;
  clientId: string;
  scopeId: string;
  deviceConnection: string;
  connected: boolean;
  ipAddress: string;
  status: string;
  statusCode: string;
}

/**
 * One device of `d` as a row whose `row_to_json` is exactly what `JSON.stringify` gives
 * toDeviceDto's object: the keys in its order, no whitespace, strings escaped alike, timestamps
 * as `Date.toJSON` writes them, applicationIds split on commas with empty parts dropped. So a
 * page of 500 is written by the statement and sent as it is, instead of hydrating 501 entities,
 * mapping them and serialising them again (what the profile of the listing showed). One
 * `row_to_json` per device costs about half of what concatenating each field's JSON did.
 */
const DEVICE_ROW = `SELECT d.id, d.scope_id AS "scopeId", d.client_id AS "clientId", d.display_name AS "displayName",
    d.status, d.connection_status AS "connectionStatus", ${isoTime('d.last_event_on')} AS "lastEventOn",
    d.model_id AS "modelId", d.serial_number AS "serialNumber", d.firmware_version AS "firmwareVersion",
    d.connection_ip AS "connectionIp", array_remove(string_to_array(d.application_ids, ','), '') AS "applicationIds",
    d.tunnel_ip AS "tunnelAddress", d.vpn_public_key AS "vpnPublicKey", d.gateway_id AS "gatewayId",
    d.mqtt_username AS "mqttUsername", ${isoTime('d.credentials_issued_on')} AS "credentialsIssuedOn",
    ${isoTime('d.created_on')} AS "createdOn", d.created_by AS "createdBy",
    ${isoTime('d.modified_on')} AS "modifiedOn", d.modified_by AS "modifiedBy", d.optlock`;

/** The filters of a device listing (DeviceListQueryDto); all optional. */
export interface DeviceListFilter {
  clientId?: string;
  status?: string;
  connectionStatus?: string;
  /** Case-insensitive substring of clientId, displayName or serialNumber (LIKE-escaped here). */
  matchTerm?: string;
}

/** Host offsets probed in the first round of a tunnel address search (firstFreeTunnelAddress). */
const FREE_ADDRESS_WINDOW = 64;

const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * Every SQL statement about device rows. Methods that serve a request take the scope first: a
 * device of another tenant is simply not found. The MQTT side (broker logins, lifecycle
 * messages) knows a device by (account name, clientId) instead, which is unique across tenants.
 */
/** A device as an external broker sees it: who holds MQTT credentials, and whether it may connect. */
export interface DeviceCredentialRow {
  id: string;
  account: string;
  clientId: string;
  username: string;
  enabled: boolean;
}

@Injectable()
export class DevicesRepository {
  constructor(
    @InjectRepository(Device) private readonly devices: Repository<Device>,
    private readonly dataSource: DataSource,
  ) {}

  /**
   * A page of the scope's devices ordered by client id, as the list body's JSON text
   * (`{"items":[…],"size":…,"limitExceeded":…[,"totalCount":…][,"nextCursor":…]}`, toListResult's
   * shape and the cursor of the page's last device when more follow): the page is taken from the
   * (scope_id, client_id) index, from `offset` or after `cursor`, with one extra row that only sets
   * limitExceeded.
   */
  async listPageJson(
    scopeId: string,
    filter: DeviceListFilter,
    page: { offset: number; limit: number; askTotalCount: boolean; cursor: ListCursor | null },
  ): Promise<string> {
    const params: unknown[] = [scopeId];
    const where = ['d.scope_id = $1'];
    const param = (v: unknown) => `$${params.push(v)}`;
    if (filter.clientId !== undefined) where.push(`d.client_id = ${param(filter.clientId)}`);
    if (filter.status !== undefined) where.push(`d.status = ${param(filter.status)}`);
    if (filter.connectionStatus !== undefined) {
      where.push(`d.connection_status = ${param(filter.connectionStatus)}`);
    }
    if (filter.matchTerm !== undefined) {
      const term = param(`%${likeEscape(filter.matchTerm)}%`);
      where.push(
        `(d.client_id ILIKE ${term} OR d.display_name ILIKE ${term} OR d.serial_number ILIKE ${term})`,
      );
    }
    const cond = where.join(' AND ');
    // A cursor names the last device of the previous page; client ids are unique in an account.
    const pick = page.cursor ? `${cond} AND d.client_id > ${param(page.cursor.clientId)}` : cond;
    const limit = `${param(page.limit)}::int`;
    const offset = `${param(page.offset)}::int`;
    const total = page.askTotalCount
      ? ` || ',"totalCount":' || (SELECT count(*) FROM device d WHERE ${cond})`
      : '';
    // The page is picked by clientId alone (from the (scope_id, client_id) index when unfiltered:
    // the rows skipped by the offset are never read), then only its devices are read and written,
    // each looked up by the index (OFFSET 0 keeps the lookup a nested loop: as a join, Postgres
    // hashed every device of the account to find the page's 500).
    const rows: Array<{ body: string }> = await this.dataSource.query(
      `SELECT '{"items":[' || coalesce(string_agg(p.item, ',' ORDER BY p.n) FILTER (WHERE p.n <= ${limit}), '')
              || '],"size":' || count(*) FILTER (WHERE p.n <= ${limit})
              || ',"limitExceeded":' || (count(*) > ${limit})${total} || ${nextCursorJson('p', limit)} || '}' AS body
         FROM (SELECT (SELECT row_to_json(r)::text FROM (${DEVICE_ROW}) r) AS item, d.client_id, d.id,
                      row_number() OVER (ORDER BY d.client_id) AS n
                 FROM (SELECT d.client_id FROM device d WHERE ${pick}
                        ORDER BY d.client_id OFFSET ${offset} LIMIT ${limit} + 1) pick
                 CROSS JOIN LATERAL (SELECT * FROM device d
                                      WHERE d.scope_id = $1 AND d.client_id = pick.client_id OFFSET 0) d) p`,
      params,
    );
    return rows[0].body;
  }

  findOne(scopeId: string, id: string): Promise<Device | null> {
    return this.devices.findOne({ where: { scopeId, id } });
  }

  /**
   * The lowest free host address of `vpnSubnet` from host offset `fromHost` up (never below .2:
   * the first host, .1, is kept for the VPN server side), with its offset; null when none is left.
   * The caller holds the account row lock, which serialises allocation per account; unique
   * (scope_id, tunnel_ip) is the backstop. The first window of offsets is probed alone: from the
   * account's hint its first address is almost always free, so a creation costs one index probe
   * rather than one per device of the account.
   */
  async firstFreeTunnelAddress(
    em: EntityManager,
    scopeId: string,
    vpnSubnet: string,
    fromHost = 2,
  ): Promise<{ ip: string; host: number } | null> {
    const probe = async (from: number, window: number | null) => {
      const rows: Array<{ ip: string; host: number }> = await em.query(
        `SELECT host(network($2::cidr) + g) AS ip, g::int AS host
           FROM generate_series($3::bigint,
                                least($3::bigint + coalesce($4::bigint, 4294967296::bigint),
                                      (2::bigint ^ (32 - masklen($2::cidr)))::bigint - 2)) AS g
          WHERE NOT EXISTS (
            -- tunnel_ip holds host addresses (/32); inet equality compares the netmask too.
            SELECT 1 FROM device d WHERE d.scope_id = $1 AND d.tunnel_ip = set_masklen(network($2::cidr) + g, 32))
          ORDER BY g
          LIMIT 1`,
        [scopeId, vpnSubnet, from, window === null ? null : window - 1],
      );
      return rows[0] ?? null;
    };
    const from = Math.max(2, fromHost);
    return (await probe(from, FREE_ADDRESS_WINDOW)) ?? (await probe(from + FREE_ADDRESS_WINDOW, null));
  }

  /** Inserts the device; a taken clientId (or tunnel address) is 409 ENTRY_EXISTS. */
  async insert(em: EntityManager, scopeId: string, fields: NewDevice): Promise<Device> {
    const repo = em.getRepository(Device);
    try {
      return await repo.save(repo.create({ scopeId, ...fields, modifiedBy: fields.createdBy }));
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw new AppError(
          'ENTRY_EXISTS',
          'Device already exists',
          `A device with clientId ${fields.clientId} exists`,
        );
      }
      throw err;
    }
  }

  update(scopeId: string, id: string, optlock: number, changes: DeviceChanges): Promise<Device> {
    return updateWithOptlock(this.devices, { scopeId, id }, optlock, changes, 'Device');
  }

  /** Deletes the device inside the caller's transaction; returns its clientId and tunnel address, null when not found. */
  async delete(
    em: EntityManager,
    scopeId: string,
    id: string,
  ): Promise<{ clientId: string; tunnelIp: string } | null> {
    const rows: Array<{ client_id: string; tunnel_ip: string }> = await em.query(
      // DELETE … RETURNING inside a CTE: the driver hands back plain rows for a SELECT.
      `WITH gone AS (DELETE FROM device WHERE scope_id = $1 AND id = $2 RETURNING client_id, tunnel_ip)
       SELECT client_id, host(tunnel_ip) AS tunnel_ip FROM gone`,
      [scopeId, id],
    );
    return rows[0] ? { clientId: rows[0].client_id, tunnelIp: rows[0].tunnel_ip } : null;
  }

  async setCredentials(scopeId: string, id: string, username: string, digest: Buffer): Promise<void> {
    await this.devices.update(
      { scopeId, id },
      { mqttUsername: username, mqttPasswordDigest: digest, credentialsIssuedOn: new Date() },
    );
  }

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

  /** For the broker: the device holding these MQTT credentials (one indexed lookup). */
  async findByMqttUsername(username: string): Promise<DeviceCredentials | null> {
    const rows: Array<{
      id: string;
      client_id: string;
      status: string;
      mqtt_password_digest: Buffer | null;
      account: string;
    }> = await this.dataSource.query(
      `SELECT d.id, d.client_id, d.status, d.mqtt_password_digest, a.name AS account
         FROM device d JOIN account a ON a.id = d.scope_id
        WHERE d.mqtt_username = $1`,
      [username],
    );
    const row = rows[0];
    return row
      ? {
          id: row.id,
          clientId: row.client_id,
          status: row.status,
          digest: row.mqtt_password_digest,
          account: row.account,
        }
      : null;
  }

  /**
   * Applies a lifecycle message of device (account name, clientId) and records it as a device
   * event, in one statement; null when no such device (a gateway's message, or a deleted
   * device's). A BIRTH fills in the profile it carries and says which WireGuard key the agent has.
   */
  async applyLifecycle(
    account: string,
    clientId: string,
    update: LifecycleUpdate,
  ): Promise<{ id: string; scopeId: string; tunnelIp: string } | null> {
    const { birth } = update;
    const rows: Array<{ id: string; scope_id: string; tunnel_ip: string }> = await this.dataSource.query(
      `WITH d AS (
         UPDATE device d
            SET connection_status = $3,
                last_event_on = now(),
                display_name = CASE WHEN d.display_name = '' AND $4::text IS NOT NULL THEN $4 ELSE d.display_name END,
                model_id = COALESCE($5, d.model_id),
                serial_number = COALESCE($6, d.serial_number),
                firmware_version = COALESCE($7, d.firmware_version),
                connection_ip = COALESCE($8, d.connection_ip),
                application_ids = COALESCE($9, d.application_ids),
                -- A BIRTH says which key the agent has now (none: a keyless driver).
                vpn_public_key = CASE WHEN $11::text = 'BIRTH' THEN $10 ELSE d.vpn_public_key END
           FROM account a
          WHERE a.id = d.scope_id AND a.name = $1 AND d.client_id = $2
            AND ($14::text IS NULL OR d.connection_status::text = $14)
          RETURNING d.id, d.scope_id, host(d.tunnel_ip) AS tunnel_ip),
       ev AS (
         INSERT INTO device_event (scope_id, device_id, type, sent_on, details)
         SELECT scope_id, id, $11, $12, $13::jsonb FROM d)
       SELECT id, scope_id, tunnel_ip FROM d`,
      [
        account,
        clientId,
        update.connectionStatus,
        birth?.displayName ?? null,
        birth?.modelId ?? null,
        birth?.serialNumber ?? null,
        birth?.firmwareVersion ?? null,
        birth?.connectionIp ?? null,
        birth ? birth.applicationIds.join(',').slice(0, 1024) : null,
        birth?.publicKey ?? null,
        update.eventType,
        update.sentOn,
        JSON.stringify(update.details),
        update.onlyFrom ?? null,
      ],
    );
    const row = rows[0];
    return row ? { id: row.id, scopeId: row.scope_id, tunnelIp: row.tunnel_ip } : null;
  }

  /**
   * Sets the connection status of device (account name, clientId) from something other than a
   * lifecycle message, only when its stored status is one of `from`, and records the change as the
   * lifecycle event it stands for (`details.inferredFrom` says why); null when nothing changed.
   * One statement, so a status already right costs no write.
   */
  async inferConnection(
    account: string,
    clientId: string,
    change: InferredConnection,
  ): Promise<{ id: string; scopeId: string } | null> {
    const rows: Array<{ id: string; scope_id: string }> = await this.dataSource.query(
      `WITH d AS (
         UPDATE device d SET connection_status = $3, last_event_on = now()
           FROM account a
          WHERE a.id = d.scope_id AND a.name = $1 AND d.client_id = $2
            AND d.connection_status = ANY($4::text[])
            AND ($5::timestamptz IS NULL OR d.last_event_on IS NULL OR d.last_event_on < $5)
          RETURNING d.id, d.scope_id),
       ev AS (
         INSERT INTO device_event (scope_id, device_id, type, sent_on, details)
         SELECT scope_id, id, $6, NULL, jsonb_build_object('inferredFrom', $7::text) FROM d)
       SELECT id, scope_id FROM d`,
      [
        account,
        clientId,
        change.connectionStatus,
        change.from,
        change.silentSince ?? null,
        change.eventType,
        change.inferredFrom,
      ],
    );
    const row = rows[0];
    return row ? { id: row.id, scopeId: row.scope_id } : null;
  }

  /** The database's clock (lifecycle times are written with it). */
  async databaseNow(): Promise<Date> {
    const rows: Array<{ now: Date }> = await this.dataSource.query('SELECT now() AS now');
    return rows[0].now;
  }

  /**
   * One page, by id after `afterId` (keyset paging), of the devices in all accounts that a
   * connection resync asks for their status: every CONNECTED device, and the MISSING or
   * DISCONNECTED ones whose status changed since `changedSince` (those a broker shutting down
   * reported gone, which may be back with their BIRTH lost); null: CONNECTED only.
   */
  pageForResync(
    afterId: string | null,
    limit: number,
    changedSince: Date | null,
  ): Promise<
    Array<{
      id: string;
      scopeId: string;
      account: string;
      clientId: string;
      connectionStatus: ConnectionStatus;
    }>
  > {
    return this.dataSource.query(
      `SELECT d.id, d.scope_id AS "scopeId", a.name AS account, d.client_id AS "clientId",
              d.connection_status AS "connectionStatus"
         FROM device d JOIN account a ON a.id = d.scope_id
        WHERE (d.connection_status = 'CONNECTED'
               OR ($3::timestamptz IS NOT NULL AND d.connection_status IN ('MISSING', 'DISCONNECTED')
                   AND d.last_event_on >= $3))
          AND ($1::uuid IS NULL OR d.id > $1)
        ORDER BY d.id
        LIMIT $2`,
      [afterId, limit, changedSince],
    );
  }

  /** Every device of the subtree below `scopePath` with its current connection and VPN state. */
  statesInSubtree(scopePath: string): Promise<DeviceState[]> {
    return this.dataSource.query(
      `SELECT d.id AS "deviceId", d.client_id AS "clientId", d.scope_id AS "scopeId",
              d.connection_status AS "deviceConnection",
              COALESCE(s.connected, false) AS connected, COALESCE(s.ip_address, '0.0.0.0') AS "ipAddress",
              COALESCE(s.status, 'idle') AS status, COALESCE(s.status_code, '000') AS "statusCode"
         FROM device d
         JOIN account a ON a.id = d.scope_id
         LEFT JOIN device_vpn_status s ON s.device_id = d.id
        WHERE starts_with(a.path, $1)
        ORDER BY d.scope_id, d.client_id`,
      [scopePath],
    );
  }
}
