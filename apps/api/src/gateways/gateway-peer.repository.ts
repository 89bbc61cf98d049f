import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import {
  firstHostAddress,
  MAX_PEERS_PER_MESSAGE,
  type GatewayPeer as WirePeer,
  type GatewayPeerStats,
} from '@app/protocol';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AppError } from '../common/app-error';
import { isUniqueViolation, pgConstraint } from '../common/db-errors';

/** A gateway whose desired state changed, and the serial that includes the change. */
export interface PeerChange {
  gatewayId: string;
  serial: number;
}

/** What the gateway must hold at one serial: everything (full sync) or the changes since another. */
export interface DesiredState {
  serial: number;
  addresses: string[];
  peers: WirePeer[];
}

export interface ChangeSet extends DesiredState {
  previous: number;
  remove: string[];
}

interface PeerRow {
  public_key: string;
  tunnel_ip: string;
  kind: 'device' | 'client';
  scope_id: string;
  allow: string[];
}

/*
 * Allow lists: a pair may talk when either side lists the other. A device lists the client
 * sessions that cover it, a client the devices its session covers (one device, or every device
 * of the accounts of a site session).
 */

/**
 * Every live peer of gateway $1 with its allow list, for a full sync: the pairs are built once
 * with hash joins and grouped per key (10,000 peers in tens of milliseconds).
 */
const ALL_PEERS_SQL = `
  WITH live AS (SELECT * FROM gateway_peer WHERE gateway_id = $1 AND NOT removed),
  pairs AS (
    SELECT d.public_key AS dk, c.public_key AS ck
      FROM live c JOIN live d ON d.kind = 'device' AND d.device_id = c.covers_device_id
     WHERE c.kind = 'client'
    UNION
    SELECT d.public_key, c.public_key
      FROM live c CROSS JOIN LATERAL unnest(c.covers_account_ids) AS a(id)
      JOIN live d ON d.kind = 'device' AND d.scope_id = a.id
     WHERE c.kind = 'client'),
  by_device AS (SELECT dk AS k, array_agg(ck ORDER BY ck) AS allow FROM pairs GROUP BY dk),
  by_client AS (SELECT ck AS k, array_agg(dk ORDER BY dk) AS allow FROM pairs GROUP BY ck)
  SELECT p.public_key, host(p.tunnel_ip) AS tunnel_ip, p.kind, p.scope_id,
         COALESCE(CASE WHEN p.kind = 'device' THEN bd.allow ELSE bc.allow END, '{}') AS allow
    FROM live p
    LEFT JOIN by_device bd ON bd.k = p.public_key
    LEFT JOIN by_client bc ON bc.k = p.public_key
   ORDER BY p.serial, p.public_key`;

/**
 * The live peers of gateway $1 changed after serial $2, with their allow lists: a few rows, each
 * looked up through the indexes (a device among the gateway's clients, a client among the
 * devices it covers).
 */
const CHANGED_PEERS_SQL = `
  SELECT p.public_key, host(p.tunnel_ip) AS tunnel_ip, p.kind, p.scope_id,
         COALESCE(CASE WHEN p.kind = 'device' THEN (
           SELECT array_agg(q.public_key ORDER BY q.public_key) FROM gateway_peer q
            WHERE q.gateway_id = p.gateway_id AND q.kind = 'client' AND NOT q.removed
              AND (q.covers_device_id = p.device_id OR p.scope_id = ANY(q.covers_account_ids)))
         ELSE (
           SELECT array_agg(u.k ORDER BY u.k) FROM (
             SELECT q.public_key AS k FROM gateway_peer q
              WHERE q.device_id = p.covers_device_id AND q.gateway_id = p.gateway_id AND NOT q.removed
             UNION
             SELECT q.public_key FROM gateway_peer q
              WHERE q.gateway_id = p.gateway_id AND q.kind = 'device' AND NOT q.removed
                AND q.scope_id = ANY(p.covers_account_ids)) u)
         END, '{}') AS allow
    FROM gateway_peer p
   WHERE p.gateway_id = $1 AND NOT p.removed AND p.serial > $2
   ORDER BY p.serial, p.public_key`;

const toWire = (r: PeerRow): WirePeer => ({
  publicKey: r.public_key,
  allowedIps: [`${r.tunnel_ip}/32`],
  kind: r.kind,
  accountId: r.scope_id,
  allow: r.allow,
});

/**
 * The desired state of every gateway (the gateway_peer table) and its change log: every change
 * bumps the gateway's desired_serial in the same transaction and stamps the changed row with it;
 * removals stay as tombstones until acknowledged. All writes to one gateway's peers are
 * serialised by its row lock (the serial bump), so serials are gap-free per gateway.
 */
@Injectable()
export class GatewayPeerRepository {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * Puts device `deviceId`'s peer with `publicKey` on gateway `gatewayId`, replacing a peer of
   * the device with another key or on another gateway. Unchanged → no new serial. A key already
   * used by another peer of the gateway → 409 ENTRY_EXISTS.
   */
  async upsertDevicePeer(
    gatewayId: string,
    d: { deviceId: string; scopeId: string; publicKey: string; tunnelIp: string },
  ): Promise<{ serial: number; changes: PeerChange[] }> {
    try {
      return await this.dataSource.transaction(async (em) => {
        const current: Array<{
          id: string;
          gateway_id: string;
          public_key: string;
          tunnel_ip: string;
          serial: string;
        }> = await em.query(
          `SELECT id, gateway_id, public_key, host(tunnel_ip) AS tunnel_ip, serial
               FROM gateway_peer WHERE device_id = $1 AND NOT removed FOR UPDATE`,
          [d.deviceId],
        );
        const same = current.find(
          (c) => c.gateway_id === gatewayId && c.public_key === d.publicKey && c.tunnel_ip === d.tunnelIp,
        );
        if (same && current.length === 1) return { serial: Number(same.serial), changes: [] };
        const changes: PeerChange[] = [];
        for (const c of current) changes.push(await this.tombstone(em, c.gateway_id, c.id));
        const serial = await this.bump(em, gatewayId);
        await em.query(
          `INSERT INTO gateway_peer (gateway_id, scope_id, kind, public_key, tunnel_ip, device_id, serial)
           VALUES ($1, $2, 'device', $3, $4::inet, $5, $6)`,
          [gatewayId, d.scopeId, d.publicKey, d.tunnelIp, d.deviceId, serial],
        );
        changes.push({ gatewayId, serial });
        return { serial, changes: latestPerGateway(changes) };
      });
    } catch (err) {
      if (isUniqueViolation(err) && pgConstraint(err) === 'gateway_peer_key_unique') {
        throw new AppError(
          'ENTRY_EXISTS',
          'Public key already in use',
          "Another peer of the device's gateway uses the same WireGuard public key",
        );
      }
      throw err;
    }
  }

  /**
   * Adds an engineer's client peer for a session (inside the caller's transaction). A key already
   * used by another peer of the gateway → 409 ENTRY_EXISTS.
   */
  async addClientPeer(
    em: EntityManager,
    gatewayId: string,
    c: {
      sessionId: string;
      scopeId: string;
      publicKey: string;
      tunnelIp: string;
      coversDeviceId: string | null;
      coversAccountIds: string[] | null;
    },
  ): Promise<PeerChange> {
    const serial = await this.bump(em, gatewayId);
    try {
      await em.query(
        `INSERT INTO gateway_peer
           (gateway_id, scope_id, kind, public_key, tunnel_ip, session_id, covers_device_id, covers_account_ids, serial)
         VALUES ($1, $2, 'client', $3, $4::inet, $5, $6, $7::uuid[], $8)`,
        [
          gatewayId,
          c.scopeId,
          c.publicKey,
          c.tunnelIp,
          c.sessionId,
          c.coversDeviceId,
          c.coversAccountIds,
          serial,
        ],
      );
    } catch (err) {
      if (isUniqueViolation(err) && pgConstraint(err) === 'gateway_peer_key_unique') {
        throw new AppError(
          'ENTRY_EXISTS',
          'Public key already in use',
          'Another device or session on this gateway uses the same WireGuard public key; generate a new key pair',
        );
      }
      throw err;
    }
    return { gatewayId, serial };
  }

  /**
   * Takes a session's client peer off its gateway (inside the caller's transaction) and returns
   * its last traffic counters for the session's record.
   */
  async removeSessionPeer(
    em: EntityManager,
    sessionId: string,
  ): Promise<{ change: PeerChange; rxBytes: number; txBytes: number } | null> {
    const rows: Array<{ id: string; gateway_id: string; rx_bytes: string; tx_bytes: string }> =
      await em.query(
        'SELECT id, gateway_id, rx_bytes, tx_bytes FROM gateway_peer WHERE session_id = $1 AND NOT removed FOR UPDATE',
        [sessionId],
      );
    const row = rows[0];
    if (!row) return null;
    return {
      change: await this.tombstone(em, row.gateway_id, row.id),
      rxBytes: Number(row.rx_bytes),
      txBytes: Number(row.tx_bytes),
    };
  }

  /** Takes every live peer of the device off its gateway. */
  async removeDevicePeers(deviceId: string, em?: EntityManager): Promise<PeerChange[]> {
    const run = async (tx: EntityManager) => {
      const rows: Array<{ id: string; gateway_id: string }> = await tx.query(
        'SELECT id, gateway_id FROM gateway_peer WHERE device_id = $1 AND NOT removed FOR UPDATE',
        [deviceId],
      );
      const changes: PeerChange[] = [];
      for (const r of rows) changes.push(await this.tombstone(tx, r.gateway_id, r.id));
      return changes;
    };
    return em ? run(em) : this.dataSource.transaction(run);
  }

  /** The device's live peer, if any (its key, to tell whether a BIRTH changed it). */
  async devicePeer(deviceId: string): Promise<{ gatewayId: string; publicKey: string } | null> {
    const rows: Array<{ gateway_id: string; public_key: string }> = await this.dataSource.query(
      'SELECT gateway_id, public_key FROM gateway_peer WHERE device_id = $1 AND NOT removed',
      [deviceId],
    );
    return rows[0] ? { gatewayId: rows[0].gateway_id, publicKey: rows[0].public_key } : null;
  }

  /** Everything gateway `gatewayId` must hold now, read in one snapshot. */
  fullState(gatewayId: string): Promise<DesiredState> {
    return this.snapshot(async (em) => {
      const serial = await this.desiredSerial(em, gatewayId);
      const rows: PeerRow[] = await em.query(ALL_PEERS_SQL, [gatewayId]);
      return { serial, addresses: await this.addresses(em, gatewayId), peers: rows.map(toWire) };
    });
  }

  /**
   * The changes after serial `since`, merged (the state of each changed peer now), read in one
   * snapshot; null when there are more than fit one message (the caller sends a full sync).
   */
  changesSince(gatewayId: string, since: number): Promise<ChangeSet | null> {
    return this.snapshot(async (em) => {
      const serial = await this.desiredSerial(em, gatewayId);
      const count: Array<{ n: string }> = await em.query(
        'SELECT count(*) AS n FROM gateway_peer WHERE gateway_id = $1 AND serial > $2',
        [gatewayId, since],
      );
      if (Number(count[0].n) > MAX_PEERS_PER_MESSAGE) return null;
      const live: PeerRow[] = await em.query(CHANGED_PEERS_SQL, [gatewayId, since]);
      const removed: Array<{ public_key: string }> = await em.query(
        'SELECT DISTINCT public_key FROM gateway_peer WHERE gateway_id = $1 AND removed AND serial > $2',
        [gatewayId, since],
      );
      const upserted = new Set(live.map((r) => r.public_key));
      return {
        serial,
        previous: since,
        addresses: await this.addresses(em, gatewayId),
        peers: live.map(toWire),
        // A key removed and added again in the range is simply upserted (its newest row wins).
        remove: removed.map((r) => r.public_key).filter((k) => !upserted.has(k)),
      };
    });
  }

  /**
   * Stores what the gateway reported of its peers; returns the live peers whose first handshake
   * this report brought.
   */
  async recordStats(
    gatewayId: string,
    stats: readonly GatewayPeerStats[],
  ): Promise<Array<{ kind: string; deviceId: string | null; sessionId: string | null }>> {
    if (stats.length === 0) return [];
    const rows: Array<{ kind: string; device_id: string | null; session_id: string | null; first: boolean }> =
      await this.dataSource.query(
        `WITH i AS (SELECT * FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::bigint[]) AS i(key, hs, rx, tx)),
              cur AS (SELECT p.id, p.last_handshake_on AS before, p.rx_bytes AS before_rx
                        FROM gateway_peer p JOIN i ON p.public_key = i.key
                       WHERE p.gateway_id = $1 AND NOT p.removed FOR UPDATE OF p),
              up AS (
                UPDATE gateway_peer p
                   SET last_handshake_on = CASE WHEN i.hs IS NULL THEN p.last_handshake_on
                                                ELSE to_timestamp(i.hs / 1000.0) END,
                       rx_bytes = i.rx, tx_bytes = i.tx
                  FROM i, cur
                 WHERE p.id = cur.id AND p.public_key = i.key
                 RETURNING p.kind, p.device_id, p.session_id, (cur.before IS NULL AND i.hs IS NOT NULL) AS first,
                           (i.rx > cur.before_rx) AS traffic),
              -- Packets from an engineer's client (its keepalives too) keep its session alive:
              -- WireGuard re-handshakes only every 2 minutes, longer than 3 ping intervals.
              alive AS (
                UPDATE vpn_session s SET last_seen_on = now()
                  FROM up WHERE up.session_id = s.id AND up.traffic AND s.ended_on IS NULL)
         SELECT kind, device_id, session_id, first FROM up`,
        [
          gatewayId,
          stats.map((s) => s.publicKey),
          stats.map((s) => s.lastHandshakeOn),
          stats.map((s) => s.rxBytes),
          stats.map((s) => s.txBytes),
        ],
      );
    return rows
      .filter((r) => r.first)
      .map((r) => ({ kind: r.kind, deviceId: r.device_id, sessionId: r.session_id }));
  }

  /**
   * Devices whose peer should go: their MQTT link has been down for longer than the grace
   * period and the gateway has seen no handshake from them for as long.
   */
  async unreachableDevices(graceSeconds: number): Promise<string[]> {
    const rows: Array<{ device_id: string }> = await this.dataSource.query(
      `SELECT p.device_id FROM gateway_peer p JOIN device d ON d.id = p.device_id
        WHERE NOT p.removed AND p.kind = 'device' AND d.connection_status <> 'CONNECTED'
          AND COALESCE(d.last_event_on, p.created_on) < now() - make_interval(secs => $1)
          AND p.created_on < now() - make_interval(secs => $1)
          AND (p.last_handshake_on IS NULL OR p.last_handshake_on < now() - make_interval(secs => $1))`,
      [graceSeconds],
    );
    return rows.map((r) => r.device_id);
  }

  private async tombstone(em: EntityManager, gatewayId: string, peerId: string): Promise<PeerChange> {
    const serial = await this.bump(em, gatewayId);
    await em.query('UPDATE gateway_peer SET removed = true, serial = $2 WHERE id = $1', [peerId, serial]);
    return { gatewayId, serial };
  }

  private async bump(em: EntityManager, gatewayId: string): Promise<number> {
    const rows: Array<{ desired_serial: string }> = await em.query(
      // UPDATE … RETURNING inside a CTE: the driver hands back plain rows for a SELECT.
      'WITH u AS (UPDATE gateway SET desired_serial = desired_serial + 1 WHERE id = $1 RETURNING desired_serial) SELECT * FROM u',
      [gatewayId],
    );
    if (!rows[0]) throw AppError.notFound('Gateway');
    return Number(rows[0].desired_serial);
  }

  private async desiredSerial(em: EntityManager, gatewayId: string): Promise<number> {
    const rows: Array<{ desired_serial: string }> = await em.query(
      'SELECT desired_serial FROM gateway WHERE id = $1',
      [gatewayId],
    );
    if (!rows[0]) throw AppError.notFound('Gateway');
    return Number(rows[0].desired_serial);
  }

  /**
   * The gateway's own interface addresses: the first host of each account subnet it carries
   * devices of (so every device can ping its gateway), and of the engineers' client pool.
   */
  private async addresses(em: EntityManager, gatewayId: string): Promise<string[]> {
    const rows: Array<{ subnet: string }> = await em.query(
      `SELECT DISTINCT a.vpn_subnet::text AS subnet FROM gateway_peer p JOIN account a ON a.id = p.scope_id
        WHERE p.gateway_id = $1 AND NOT p.removed AND p.kind = 'device' ORDER BY 1`,
      [gatewayId],
    );
    return [...rows.map((r) => firstHostAddress(r.subnet)), firstHostAddress(this.config.vpnClientPool)];
  }

  /** Reads in one REPEATABLE READ snapshot, so a serial and the rows it covers match. */
  private snapshot<T>(read: (em: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction('REPEATABLE READ', read);
  }
}

function latestPerGateway(changes: PeerChange[]): PeerChange[] {
  const latest = new Map<string, number>();
  for (const c of changes) latest.set(c.gatewayId, Math.max(latest.get(c.gatewayId) ?? 0, c.serial));
  return [...latest].map(([gatewayId, serial]) => ({ gatewayId, serial }));
}
