import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';

/** What a reaper did in one pass: the dead instances it removed and the operations it closed. */
export interface ReapResult {
  instances: string[];
  operationsClosed: number;
}

/**
 * Every SQL statement about `api_instance`, the leases of the running API processes
 * (docs/scale-out.md). Lease times are computed by the database (`now()`), so the replicas'
 * clocks never meet.
 */
@Injectable()
export class InstancesRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Takes (or, after it was lost, takes again) the lease of instance `id` for `leaseMs`; true when
   * the row already existed, false when it had to be created (first start, or the lease expired and
   * a reaper deleted it meanwhile).
   */
  async renew(
    instance: { id: string; mqttClientId: string; host: string },
    leaseMs: number,
  ): Promise<boolean> {
    const rows: Array<{ existed: boolean }> = await this.dataSource.query(
      `INSERT INTO api_instance AS i (id, mqtt_client_id, host, expires_on)
       VALUES ($1, $2, $3, now() + make_interval(secs => $4 / 1000.0))
       ON CONFLICT (id) DO UPDATE SET renewed_on = now(), expires_on = EXCLUDED.expires_on
       RETURNING (xmax <> 0) AS existed`,
      [instance.id, instance.mqttClientId, instance.host.slice(0, 255), leaseMs],
    );
    return rows[0]?.existed ?? false;
  }

  /** Ends the lease of a stopping instance (its operations are closed first). */
  async remove(id: string): Promise<void> {
    await this.dataSource.query(`DELETE FROM api_instance WHERE id = $1`, [id]);
  }

  /**
   * Claims up to `limit` instances whose lease has expired, lets `closeOperations` fail what they
   * left RUNNING, and deletes them, in one transaction. The rows are locked with SKIP LOCKED: when
   * every replica reaps at the same moment, each dead instance is handled by exactly one of them
   * and nobody waits; an instance that renews while it is being reaped waits for the delete and
   * then registers again.
   */
  async reapExpired(
    closeOperations: (manager: EntityManager, instanceIds: string[]) => Promise<number>,
    limit = 100,
  ): Promise<ReapResult> {
    return this.dataSource.transaction(async (manager) => {
      const dead: Array<{ id: string }> = await manager.query(
        `SELECT id FROM api_instance WHERE expires_on < now() ORDER BY expires_on LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      if (dead.length === 0) return { instances: [], operationsClosed: 0 };
      const ids = dead.map((d) => d.id);
      const operationsClosed = await closeOperations(manager, ids);
      await manager.query(`DELETE FROM api_instance WHERE id = ANY($1::uuid[])`, [ids]);
      return { instances: ids, operationsClosed };
    });
  }

  /**
   * The live instance that started first (ties broken by id): the one that takes the duties only
   * one replica may have (docs/scale-out.md). Null when no lease is live.
   */
  async oldestLive(): Promise<string | null> {
    const rows: Array<{ id: string }> = await this.dataSource.query(
      `SELECT id FROM api_instance WHERE expires_on >= now() ORDER BY started_on, id LIMIT 1`,
    );
    return rows[0]?.id ?? null;
  }
}
