import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { DataSource, type EntityManager, Repository } from 'typeorm';
import type { BirthCertificate } from '@app/protocol';
import { AccountsRepository } from '../accounts/accounts.repository';
import { AppError } from '../common/app-error';
import { isUniqueViolation } from '../common/db-errors';
import { updateWithOptlock } from '../common/optlock';
import type { LinkStatus } from '../mqtt/connection-events';
import { Gateway } from './gateway.entity';

/** What the publisher needs to know of a gateway. */
export interface GatewaySyncState {
  id: string;
  scopeId: string;
  account: string;
  name: string;
  connectionStatus: LinkStatus;
  desiredSerial: number;
  appliedSerial: number;
}

/** A gateway as a device or an engineer's session uses it. */
export interface UsableGateway {
  id: string;
  scopeId: string;
  name: string;
  endpoint: string;
  publicKey: string | null;
  connectionStatus: LinkStatus;
}

interface UsableRow {
  id: string;
  scope_id: string;
  name: string;
  endpoint: string;
  public_key: string | null;
  connection_status: LinkStatus;
}

const toUsable = (r: UsableRow): UsableGateway => ({
  id: r.id,
  scopeId: r.scope_id,
  name: r.name,
  endpoint: r.endpoint,
  publicKey: r.public_key,
  connectionStatus: r.connection_status,
});

/** Advisory lock namespace of the per-gateway publisher lock (with hashtext(gateway id) as the key). */
const PUBLISHER_LOCK_NAMESPACE = 0x47_57_53_59; // "GWSY"

/**
 * Every SQL statement about gateways (account rows are read and locked through AccountsRepository). Methods that serve a request take the scope first: a
 * gateway of another tenant is simply not found.
 */
@Injectable()
export class GatewayRepository {
  constructor(
    @InjectRepository(Gateway) private readonly gateways: Repository<Gateway>,
    private readonly dataSource: DataSource,
    private readonly accounts: AccountsRepository,
  ) {}

  findOne(scopeId: string, id: string): Promise<Gateway | null> {
    return this.gateways.findOne({ where: { scopeId, id } });
  }

  async list(
    scopeId: string,
    page: { offset: number; limit: number; askTotalCount: boolean },
    filter: { name?: string; connectionStatus?: LinkStatus },
  ): Promise<{ rows: Gateway[]; total?: number }> {
    const qb = this.gateways.createQueryBuilder('g').where('g.scope_id = :scopeId', { scopeId });
    if (filter.name) qb.andWhere('g.name = :name', { name: filter.name });
    if (filter.connectionStatus) qb.andWhere('g.connection_status = :cs', { cs: filter.connectionStatus });
    const [rows, total] = await Promise.all([
      qb
        .clone()
        .orderBy('g.name', 'ASC')
        .offset(page.offset)
        .limit(page.limit + 1)
        .getMany(),
      page.askTotalCount ? qb.getCount() : Promise.resolve(undefined),
    ]);
    return { rows, total };
  }

  /** Live peers per gateway (devices and engineers' sessions it carries now). */
  async livePeerCounts(ids: string[]): Promise<Map<string, number>> {
    if (ids.length === 0) return new Map();
    const rows: Array<{ gateway_id: string; n: string }> = await this.dataSource.query(
      `SELECT gateway_id, count(*) AS n FROM gateway_peer
        WHERE gateway_id = ANY($1::uuid[]) AND NOT removed GROUP BY gateway_id`,
      [ids],
    );
    return new Map(rows.map((r) => [r.gateway_id, Number(r.n)]));
  }

  /**
   * Creates the gateway. Its name must not be a device clientId of the account: the account row
   * is locked for the check, as device creation does, so the two can never race.
   */
  async create(
    scopeId: string,
    fields: { name: string; endpoint: string; description: string },
    actor: string | null,
  ): Promise<Gateway> {
    try {
      return await this.dataSource.transaction(async (em) => {
        await this.accounts.lockForUpdate(em, scopeId);
        const taken: unknown[] = await em.query(
          'SELECT 1 FROM device WHERE scope_id = $1 AND client_id = $2',
          [scopeId, fields.name],
        );
        if (taken.length > 0) throw nameTaken(fields.name, 'a device');
        const repo = em.getRepository(Gateway);
        return repo.save(repo.create({ scopeId, ...fields, createdBy: actor, modifiedBy: actor }));
      });
    } catch (err) {
      if (isUniqueViolation(err)) throw nameTaken(fields.name, 'a gateway');
      throw err;
    }
  }

  /** For device creation, inside its transaction (which holds the account row lock). */
  async nameTaken(em: EntityManager, scopeId: string, name: string): Promise<boolean> {
    const rows: unknown[] = await em.query('SELECT 1 FROM gateway WHERE scope_id = $1 AND name = $2', [
      scopeId,
      name,
    ]);
    return rows.length > 0;
  }

  update(
    scopeId: string,
    id: string,
    optlock: number,
    changes: Partial<Pick<Gateway, 'endpoint' | 'description' | 'modifiedBy'>>,
  ): Promise<Gateway> {
    return updateWithOptlock(this.gateways, { scopeId, id }, optlock, changes, 'Gateway');
  }

  /** Deletes the gateway unless it still carries tunnels (its live peers would lose them). */
  async delete(scopeId: string, id: string): Promise<void> {
    await this.dataSource.transaction(async (em) => {
      const rows: Array<{ peers: string }> = await em.query(
        `SELECT (SELECT count(*) FROM gateway_peer p WHERE p.gateway_id = g.id AND NOT p.removed) AS peers
           FROM gateway g WHERE g.id = $1 AND g.scope_id = $2 FOR UPDATE`,
        [id, scopeId],
      );
      if (!rows[0]) throw AppError.notFound('Gateway', `No gateway ${id} in this scope`);
      const peers = Number(rows[0].peers);
      if (peers > 0) {
        throw AppError.conflict(
          'Gateway carries tunnels',
          `${peers} peer(s) use this gateway; disconnect their devices and end their sessions first`,
        );
      }
      await em.query('DELETE FROM gateway WHERE id = $1', [id]);
    });
  }

  async setCredentials(scopeId: string, id: string, username: string, digest: Buffer): Promise<void> {
    await this.gateways.update(
      { scopeId, id },
      { mqttUsername: username, mqttPasswordDigest: digest, credentialsIssuedOn: new Date() },
    );
  }

  /** The name of the gateway's account (the account segment of its topics); 404 when there is none. */
  async accountName(scopeId: string): Promise<string> {
    const name = await this.accounts.nameOf(scopeId);
    if (name === null) throw AppError.notFound('Account');
    return name;
  }

  async existsById(id: string): Promise<boolean> {
    const rows: unknown[] = await this.dataSource.query('SELECT 1 FROM gateway WHERE id = $1', [id]);
    return rows.length > 0;
  }

  /** Every gateway with issued credentials, in all accounts (for an external broker's reconciliation). */
  async listWithCredentials(): Promise<
    Array<{ id: string; account: string; name: string; username: string }>
  > {
    const rows: Array<{ id: string; account: string; name: string; mqtt_username: string }> =
      await this.dataSource.query(
        `SELECT g.id, a.name AS account, g.name, g.mqtt_username
           FROM gateway g JOIN account a ON a.id = g.scope_id
          WHERE g.mqtt_username IS NOT NULL AND g.mqtt_password_digest IS NOT NULL`,
      );
    return rows.map((r) => ({ id: r.id, account: r.account, name: r.name, username: r.mqtt_username }));
  }

  /** For the embedded broker: the gateway holding these MQTT credentials. */
  async findByMqttUsername(
    username: string,
  ): Promise<{ id: string; name: string; digest: Buffer | null; account: string } | null> {
    const rows: Array<{ id: string; name: string; mqtt_password_digest: Buffer | null; account: string }> =
      await this.dataSource.query(
        `SELECT g.id, g.name, g.mqtt_password_digest, a.name AS account
           FROM gateway g JOIN account a ON a.id = g.scope_id WHERE g.mqtt_username = $1`,
        [username],
      );
    const row = rows[0];
    return row
      ? { id: row.id, name: row.name, digest: row.mqtt_password_digest, account: row.account }
      : null;
  }

  /**
   * Applies a lifecycle message of gateway (account, name); null when no such gateway. A BIRTH
   * stores the announced key and port and marks the gateway as needing a full sync (it may have
   * restarted with nothing, or with stale peers).
   */
  async applyLifecycle(
    account: string,
    name: string,
    status: LinkStatus,
    birth: BirthCertificate | undefined,
    /** Apply only to a gateway in this status (a silent cut applies only to CONNECTED). */
    onlyFrom?: LinkStatus,
  ): Promise<{ id: string; scopeId: string } | null> {
    const rows: Array<{ id: string; scope_id: string }> = await this.dataSource.query(
      `WITH u AS (
       UPDATE gateway g
          SET connection_status = $3,
              last_seen_on = now(),
              public_key = CASE WHEN $4 THEN COALESCE($5, g.public_key) ELSE g.public_key END,
              listen_port = CASE WHEN $4 THEN COALESCE($6, g.listen_port) ELSE g.listen_port END,
              applied_serial = CASE WHEN $4 THEN -1 ELSE g.applied_serial END
         FROM account a
        WHERE a.id = g.scope_id AND a.name = $1 AND g.name = $2
          AND ($7::text IS NULL OR g.connection_status::text = $7)
        RETURNING g.id, g.scope_id)
       SELECT * FROM u`,
      [
        account,
        name,
        status,
        birth !== undefined,
        birth?.publicKey ?? null,
        birth?.listenPort ?? null,
        onlyFrom ?? null,
      ],
    );
    return rows[0] ? { id: rows[0].id, scopeId: rows[0].scope_id } : null;
  }

  /** True when (account, name) names a gateway: its messages are not a device's. */
  async exists(account: string, name: string): Promise<boolean> {
    const rows: unknown[] = await this.dataSource.query(
      'SELECT 1 FROM gateway g JOIN account a ON a.id = g.scope_id WHERE a.name = $1 AND g.name = $2',
      [account, name],
    );
    return rows.length > 0;
  }

  async idOf(account: string, name: string): Promise<string | null> {
    const rows: Array<{ id: string }> = await this.dataSource.query(
      'SELECT g.id FROM gateway g JOIN account a ON a.id = g.scope_id WHERE a.name = $1 AND g.name = $2',
      [account, name],
    );
    return rows[0]?.id ?? null;
  }

  async syncState(id: string): Promise<GatewaySyncState | null> {
    const rows: Array<{
      id: string;
      scope_id: string;
      account: string;
      name: string;
      connection_status: LinkStatus;
      desired_serial: string;
      applied_serial: string;
    }> = await this.dataSource.query(
      `SELECT g.id, g.scope_id, a.name AS account, g.name, g.connection_status, g.desired_serial, g.applied_serial
         FROM gateway g JOIN account a ON a.id = g.scope_id WHERE g.id = $1`,
      [id],
    );
    const r = rows[0];
    return r
      ? {
          id: r.id,
          scopeId: r.scope_id,
          account: r.account,
          name: r.name,
          connectionStatus: r.connection_status,
          desiredSerial: Number(r.desired_serial),
          appliedSerial: Number(r.applied_serial),
        }
      : null;
  }

  /**
   * Records that the gateway holds `serial` (never moving backwards, unless `full` says the gateway
   * now holds exactly that state) and drops the tombstones it no longer needs to be told about.
   */
  async markApplied(id: string, serial: number, full: boolean): Promise<void> {
    await this.dataSource.transaction(async (em) => {
      await em.query(
        `UPDATE gateway SET applied_serial = CASE WHEN $3 THEN $2 ELSE GREATEST(applied_serial, $2) END WHERE id = $1`,
        [id, serial, full],
      );
      await em.query('DELETE FROM gateway_peer WHERE gateway_id = $1 AND removed AND serial <= $2', [
        id,
        serial,
      ]);
    });
  }

  /**
   * Runs `work` holding the gateway's publisher lock, a session-level advisory lock on a connection
   * of its own, so one instance at a time publishes to a gateway (the lock is given up with that
   * connection if the instance dies). Answers what `work` answered; null, without running it, when
   * another instance holds the lock.
   */
  async withPublisherLock<T>(gatewayId: string, work: () => Promise<T>): Promise<T | null> {
    const lock = this.dataSource.createQueryRunner();
    await lock.connect();
    try {
      const [row] = (await lock.query('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [
        PUBLISHER_LOCK_NAMESPACE,
        gatewayId,
      ])) as Array<{ ok: boolean }>;
      if (!row.ok) return null;
      try {
        return await work();
      } finally {
        await lock.query('SELECT pg_advisory_unlock($1, hashtext($2))', [
          PUBLISHER_LOCK_NAMESPACE,
          gatewayId,
        ]);
      }
    } finally {
      await lock.release();
    }
  }

  /** The gateway reported a serial gap: the next round sends everything. */
  async markNeedsFullSync(id: string): Promise<void> {
    await this.dataSource.query('UPDATE gateway SET applied_serial = -1 WHERE id = $1', [id]);
  }

  /** Gateways connected to the broker whose acknowledged serial lags behind (for the periodic retry). */
  async lagging(): Promise<string[]> {
    const rows: Array<{ id: string }> = await this.dataSource.query(
      `SELECT id FROM gateway
        WHERE connection_status = 'CONNECTED' AND (applied_serial < desired_serial OR applied_serial < 0)`,
    );
    return rows.map((r) => r.id);
  }

  /**
   * The gateway a device uses: the one it is pinned to, else the gateway of the nearest account on
   * its path (its own, then its parent's, ...), the oldest first when an account has several.
   */
  async forDevice(deviceId: string): Promise<UsableGateway | null> {
    const rows: UsableRow[] = await this.dataSource.query(
      `SELECT g.id, g.scope_id, g.name, g.endpoint, g.public_key, g.connection_status
         FROM device d
         JOIN account a ON a.id = d.scope_id
         JOIN gateway g ON (d.gateway_id IS NOT NULL AND g.id = d.gateway_id)
                        OR (d.gateway_id IS NULL AND strpos(a.path, '/' || g.scope_id::text || '/') > 0)
         JOIN account ga ON ga.id = g.scope_id
        WHERE d.id = $1
        ORDER BY length(ga.path) DESC, g.created_on, g.id
        LIMIT 1`,
      [deviceId],
    );
    return rows[0] ? toUsable(rows[0]) : null;
  }

  /** Gateways an account may use: those of the account itself and of its ancestors, nearest first. */
  async usableBy(scopeId: string): Promise<UsableGateway[]> {
    const rows: UsableRow[] = await this.dataSource.query(
      `SELECT g.id, g.scope_id, g.name, g.endpoint, g.public_key, g.connection_status
         FROM account a
         JOIN gateway g ON strpos(a.path, '/' || g.scope_id::text || '/') > 0
         JOIN account ga ON ga.id = g.scope_id
        WHERE a.id = $1
        ORDER BY length(ga.path) DESC, g.created_on, g.id`,
      [scopeId],
    );
    return rows.map(toUsable);
  }
}

function nameTaken(name: string, by: string): AppError {
  return new AppError(
    'ENTRY_EXISTS',
    'Name already in use',
    `${by === 'a device' ? 'A device' : 'A gateway'} of this account is called ${name}; gateways and devices share one namespace`,
  );
}
