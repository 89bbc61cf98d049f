import { Inject, Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, type EntityManager, Repository } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { AppError } from '../common/app-error';
import { isUniqueViolation } from '../common/db-errors';
import { GatewayPeerRepository, type PeerChange } from '../gateways/gateway-peer.repository';
import type { LinkStatus } from '../mqtt/connection-events';
import { VpnSession, type EndReason, type SessionKind } from './vpn-session.entity';

/** Serialises client-pool allocation across instances (transaction-scoped advisory lock). */
const POOL_LOCK_KEY = 0x5650_4e43; // "VPNC"

/** What a device session needs to know about its device and the tunnel it has now. */
export interface SessionTarget {
  deviceId: string;
  scopeId: string;
  status: string;
  connectionStatus: string;
  tunnelIp: string;
  /** The device announced a WireGuard key: only such a device has a tunnel a session can join. */
  keyed: boolean;
  reported: {
    connected: boolean;
    ipAddress: string;
    status: string;
    statusCode: string;
    reportedOn: Date;
  } | null;
  peer: { gatewayId: string; lastHandshakeOn: Date | null } | null;
  gateway: {
    id: string;
    name: string;
    endpoint: string;
    publicKey: string | null;
    connection: LinkStatus;
  } | null;
}

export interface OpenSession {
  kind: SessionKind;
  scopeId: string;
  gatewayId: string;
  publicKey: string;
  pingTokenDigest: Buffer;
  pingIntervalSeconds: number;
  userId: string | null;
  apiKeyId: string | null;
  coversDeviceId: string | null;
  coversAccountIds: string[] | null;
  installationId: string | null;
  clientSessionId: string | null;
}

/**
 * Every SQL statement about VPN sessions. A session and its client peer on the gateway are
 * written in one transaction (so is its end), and the address comes from the client pool under
 * an advisory lock, with a unique index among active sessions as the backstop.
 */
@Injectable()
export class VpnSessionRepository {
  constructor(
    @InjectRepository(VpnSession) private readonly sessions: Repository<VpnSession>,
    private readonly peers: GatewayPeerRepository,
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /** The device in scope, its reported VPN status and its live gateway peer; null when not found. */
  async target(scopeId: string, deviceId: string): Promise<SessionTarget | null> {
    const rows: Array<{
      id: string;
      scope_id: string;
      status: string;
      connection_status: string;
      tunnel_ip: string;
      keyed: boolean;
      connected: boolean | null;
      ip_address: string | null;
      vpn_status: string | null;
      status_code: string | null;
      reported_on: Date | null;
      gateway_id: string | null;
      last_handshake_on: Date | null;
      gateway_name: string | null;
      endpoint: string | null;
      gateway_key: string | null;
      gateway_connection: LinkStatus | null;
    }> = await this.dataSource.query(
      `SELECT d.id, d.scope_id, d.status, d.connection_status, host(d.tunnel_ip) AS tunnel_ip,
              d.vpn_public_key IS NOT NULL AS keyed,
              s.connected, s.ip_address, s.status AS vpn_status, s.status_code, s.reported_on,
              p.gateway_id, p.last_handshake_on,
              g.name AS gateway_name, g.endpoint, g.public_key AS gateway_key, g.connection_status AS gateway_connection
         FROM device d
         LEFT JOIN device_vpn_status s ON s.device_id = d.id
         LEFT JOIN gateway_peer p ON p.device_id = d.id AND NOT p.removed
         LEFT JOIN gateway g ON g.id = p.gateway_id
        WHERE d.id = $1 AND d.scope_id = $2`,
      [deviceId, scopeId],
    );
    const r = rows[0];
    if (!r) return null;
    return {
      deviceId: r.id,
      scopeId: r.scope_id,
      status: r.status,
      connectionStatus: r.connection_status,
      tunnelIp: r.tunnel_ip,
      keyed: r.keyed,
      reported: r.reported_on
        ? {
            connected: r.connected ?? false,
            ipAddress: r.ip_address ?? '',
            status: r.vpn_status ?? 'idle',
            statusCode: r.status_code ?? '000',
            reportedOn: r.reported_on,
          }
        : null,
      peer: r.gateway_id ? { gatewayId: r.gateway_id, lastHandshakeOn: r.last_handshake_on } : null,
      gateway:
        r.gateway_id && r.gateway_name && r.endpoint && r.gateway_connection
          ? {
              id: r.gateway_id,
              name: r.gateway_name,
              endpoint: r.endpoint,
              publicKey: r.gateway_key,
              connection: r.gateway_connection,
            }
          : null,
    };
  }

  /**
   * Opens the session: an address from the client pool, the session row, its client peer on the
   * gateway. 507 INSUFFICIENT_STORAGE when the pool is full; 409 ENTRY_EXISTS for a key in use.
   */
  async open(s: OpenSession): Promise<{ session: VpnSession; change: PeerChange }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.dataSource.transaction(async (em) => {
          const tunnelIp = await this.allocate(em);
          const repo = em.getRepository(VpnSession);
          const session = await repo.save(
            repo.create({
              kind: s.kind,
              scopeId: s.scopeId,
              deviceId: s.coversDeviceId,
              coversDeviceId: s.coversDeviceId,
              coversAccountIds: s.coversAccountIds,
              gatewayId: s.gatewayId,
              userId: s.userId,
              apiKeyId: s.apiKeyId,
              publicKey: s.publicKey,
              tunnelIp,
              pingTokenDigest: s.pingTokenDigest,
              pingIntervalSeconds: s.pingIntervalSeconds,
              installationId: s.installationId,
              clientSessionId: s.clientSessionId,
            }),
          );
          const change = await this.peers.addClientPeer(em, s.gatewayId, {
            sessionId: session.id,
            scopeId: s.scopeId,
            publicKey: s.publicKey,
            tunnelIp,
            coversDeviceId: s.coversDeviceId,
            coversAccountIds: s.coversAccountIds,
          });
          return { session, change };
        });
      } catch (err) {
        // Two instances picked the same address in spite of the lock (it is per transaction): retry.
        if (isUniqueViolation(err) && attempt < 3) continue;
        throw err;
      }
    }
  }

  /** Ends the active sessions among `ids`: their peers leave the gateway, their counters are kept. */
  async end(ids: readonly string[], reason: EndReason): Promise<PeerChange[]> {
    if (ids.length === 0) return [];
    return this.dataSource.transaction(async (em) => {
      const active: Array<{ id: string }> = await em.query(
        'SELECT id FROM vpn_session WHERE id = ANY($1::uuid[]) AND ended_on IS NULL FOR UPDATE',
        [ids],
      );
      const changes: PeerChange[] = [];
      for (const { id } of active) {
        const removed = await this.peers.removeSessionPeer(em, id);
        if (removed) changes.push(removed.change);
        await em.query(
          `UPDATE vpn_session SET ended_on = now(), end_reason = $2,
                  rx_bytes = GREATEST(rx_bytes, $3), tx_bytes = GREATEST(tx_bytes, $4)
            WHERE id = $1`,
          [id, reason, removed?.rxBytes ?? 0, removed?.txBytes ?? 0],
        );
      }
      return changes;
    });
  }

  findOne(scopeId: string, id: string): Promise<VpnSession | null> {
    return this.sessions.findOne({ where: { scopeId, id } });
  }

  /** An active session of a device in scope (any scope: null, for a ping its own token authenticates). */
  findActiveForDevice(scopeId: string | null, deviceId: string, id: string): Promise<VpnSession | null> {
    const qb = this.sessions
      .createQueryBuilder('s')
      .where('s.id = :id AND s.covers_device_id = :deviceId AND s.ended_on IS NULL', { id, deviceId });
    if (scopeId !== null) qb.andWhere('s.scope_id = :scopeId', { scopeId });
    return qb.getOne();
  }

  /** The active session a FendVPN client names by its identifiers. */
  findActiveByIdentifiers(
    principal: { userId: string | null; apiKeyId: string | null },
    installationId: string,
    clientSessionId: string,
  ): Promise<VpnSession | null> {
    return this.sessions
      .createQueryBuilder('s')
      .where('s.installation_id = :installationId AND s.client_session_id = :clientSessionId', {
        installationId,
        clientSessionId,
      })
      .andWhere('s.ended_on IS NULL')
      .andWhere('s.user_id IS NOT DISTINCT FROM :userId AND s.api_key_id IS NOT DISTINCT FROM :apiKeyId', {
        userId: principal.userId,
        apiKeyId: principal.apiKeyId,
      })
      .getOne();
  }

  /** Records a ping; the new expiry, or null when the session is no longer active. */
  async touch(id: string): Promise<Date | null> {
    const rows: Array<{ expires_on: Date }> = await this.dataSource.query(
      `WITH u AS (
         UPDATE vpn_session SET last_seen_on = now() WHERE id = $1 AND ended_on IS NULL
         RETURNING last_seen_on + make_interval(secs => 3 * ping_interval_seconds) AS expires_on)
       SELECT * FROM u`,
      [id],
    );
    return rows[0]?.expires_on ?? null;
  }

  async list(
    scopeId: string,
    page: { offset: number; limit: number; askTotalCount: boolean },
    filter: { active?: boolean; deviceId?: string; kind?: SessionKind },
  ): Promise<{ rows: VpnSession[]; total?: number }> {
    const qb = this.sessions.createQueryBuilder('s').where('s.scope_id = :scopeId', { scopeId });
    if (filter.active === true) qb.andWhere('s.ended_on IS NULL');
    if (filter.active === false) qb.andWhere('s.ended_on IS NOT NULL');
    if (filter.deviceId) qb.andWhere('s.covers_device_id = :deviceId', { deviceId: filter.deviceId });
    if (filter.kind) qb.andWhere('s.kind = :kind', { kind: filter.kind });
    const [rows, total] = await Promise.all([
      qb
        .clone()
        .orderBy('s.started_on', 'DESC')
        .addOrderBy('s.id', 'ASC')
        .offset(page.offset)
        .limit(page.limit + 1)
        .getMany(),
      page.askTotalCount ? qb.getCount() : Promise.resolve(undefined),
    ]);
    return { rows, total };
  }

  /** Live traffic counters of active sessions (from their peers), by session id. */
  async liveCounters(ids: readonly string[]): Promise<Map<string, { rxBytes: number; txBytes: number }>> {
    if (ids.length === 0) return new Map();
    const rows: Array<{ session_id: string; rx_bytes: string; tx_bytes: string }> =
      await this.dataSource.query(
        'SELECT session_id, rx_bytes, tx_bytes FROM gateway_peer WHERE session_id = ANY($1::uuid[]) AND NOT removed',
        [ids],
      );
    return new Map(
      rows.map((r) => [r.session_id, { rxBytes: Number(r.rx_bytes), txBytes: Number(r.tx_bytes) }]),
    );
  }

  /** Active sessions that reach device `deviceId`. */
  async activeForDevice(deviceId: string): Promise<string[]> {
    const rows: Array<{ id: string }> = await this.dataSource.query(
      'SELECT id FROM vpn_session WHERE covers_device_id = $1 AND ended_on IS NULL',
      [deviceId],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Active sessions that must end, with why: silent for 3 × their ping interval (no ping, no
   * handshake and no packet the gateway reported), their user disabled or gone or API key deleted,
   * or their device session's device without a tunnel on the session's gateway (its peer left it
   * or moved to another gateway).
   */
  async toEnd(): Promise<Array<{ id: string; reason: EndReason }>> {
    const rows: Array<{ id: string; reason: EndReason }> = await this.dataSource.query(
      `SELECT id, reason FROM (
         SELECT s.id,
                CASE
                  WHEN (s.user_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM app_user u WHERE u.id = s.user_id AND u.enabled))
                    OR (s.api_key_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM api_key k WHERE k.id = s.api_key_id))
                    THEN 'principal_revoked'
                  WHEN s.kind = 'device' AND NOT EXISTS (
                         SELECT 1 FROM gateway_peer d
                          WHERE d.device_id = s.covers_device_id AND d.gateway_id = s.gateway_id AND NOT d.removed)
                    THEN 'device_unreachable'
                  WHEN GREATEST(s.last_seen_on, p.last_handshake_on)
                         < now() - make_interval(secs => 3 * s.ping_interval_seconds)
                    THEN 'expired'
                END AS reason
           FROM vpn_session s
           LEFT JOIN gateway_peer p ON p.session_id = s.id AND NOT p.removed
          WHERE s.ended_on IS NULL) due
        WHERE reason IS NOT NULL`,
    );
    return rows;
  }

  /** The accounts of `scopeId`'s subtree (the scope itself first) with their VPN subnets. */
  async subtree(scopeId: string): Promise<Array<{ id: string; vpnSubnet: string }>> {
    const rows: Array<{ id: string; vpn_subnet: string }> = await this.dataSource.query(
      `SELECT a.id, a.vpn_subnet::text AS vpn_subnet FROM account a
         JOIN account me ON me.id = $1
        WHERE a.path LIKE me.path || '%'
        ORDER BY length(a.path), a.id`,
      [scopeId],
    );
    return rows.map((r) => ({ id: r.id, vpnSubnet: r.vpn_subnet }));
  }

  async accountName(scopeId: string): Promise<string | null> {
    const rows: Array<{ name: string }> = await this.dataSource.query(
      'SELECT name FROM account WHERE id = $1',
      [scopeId],
    );
    return rows[0]?.name ?? null;
  }

  /** The lowest free host of the client pool; its first host is the gateways' own address. */
  private async allocate(em: EntityManager): Promise<string> {
    await em.query('SELECT pg_advisory_xact_lock($1)', [POOL_LOCK_KEY]);
    const rows: Array<{ ip: string }> = await em.query(
      `SELECT host(network($1::cidr) + g) AS ip
         FROM generate_series(2::bigint, (2::bigint ^ (32 - masklen($1::cidr)))::bigint - 2) AS g
        WHERE NOT EXISTS (
          SELECT 1 FROM vpn_session s WHERE s.ended_on IS NULL AND s.tunnel_ip = set_masklen(network($1::cidr) + g, 32))
        ORDER BY g
        LIMIT 1`,
      [this.config.vpnClientPool],
    );
    if (!rows[0]) {
      throw new AppError(
        'INSUFFICIENT_STORAGE',
        'No free client address',
        'Every address of the client pool is in use; end sessions or widen VPN_CLIENT_POOL',
      );
    }
    return rows[0].ip;
  }
}
