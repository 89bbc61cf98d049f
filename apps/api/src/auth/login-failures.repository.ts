import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** A counter that is inside its window. */
export interface FailureCount {
  key: Buffer;
  failures: number;
  /** Seconds until its window ends. */
  remainingSeconds: number;
}

/**
 * Every SQL statement about the sign-in failure counters (`login_failure`): one row per counter
 * key (a digest of a username or a client address), counting failures in a fixed window that
 * starts at the counter's first failure. What counts against what, and when to refuse, is
 * LoginThrottle's business.
 */
@Injectable()
export class LoginFailuresRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** The counters among `keys` whose window of `windowSeconds` is still running. */
  async current(keys: readonly Buffer[], windowSeconds: number): Promise<FailureCount[]> {
    const rows: Array<{ key: Buffer; failures: number; remaining: number }> = await this.dataSource.query(
      `SELECT key, failures,
              EXTRACT(EPOCH FROM window_start + $2 * interval '1 second' - now())::float8 AS remaining
         FROM login_failure
        WHERE key = ANY($1::bytea[]) AND window_start > now() - $2 * interval '1 second'`,
      [keys, windowSeconds],
    );
    return rows.map((r) => ({ key: r.key, failures: r.failures, remainingSeconds: r.remaining }));
  }

  /**
   * Counts one failure against each key in one statement: a counter whose window is over (or
   * that does not exist) starts a new window at 1.
   */
  async increment(keys: readonly Buffer[], windowSeconds: number): Promise<void> {
    // A fixed order, so two attempts upserting the same rows never wait on each other in a cycle.
    const sorted = [...keys].sort((a, b) => Buffer.compare(a, b));
    await this.dataSource.query(
      `INSERT INTO login_failure AS f (key, failures, window_start)
       SELECT k, 1, now() FROM unnest($1::bytea[]) AS k
       ON CONFLICT (key) DO UPDATE SET
         failures = CASE WHEN f.window_start <= now() - $2 * interval '1 second' THEN 1 ELSE f.failures + 1 END,
         window_start = CASE WHEN f.window_start <= now() - $2 * interval '1 second' THEN now() ELSE f.window_start END`,
      [sorted, windowSeconds],
    );
  }

  async clear(key: Buffer): Promise<void> {
    await this.dataSource.query('DELETE FROM login_failure WHERE key = $1', [key]);
  }

  /** Deletes counters whose window is over; answers how many. */
  async purgeExpired(windowSeconds: number): Promise<number> {
    // TypeORM answers a DELETE with [rows, rowCount].
    const [, affected] = await this.dataSource.query<[unknown, number]>(
      `DELETE FROM login_failure WHERE window_start <= now() - $1 * interval '1 second'`,
      [windowSeconds],
    );
    return affected;
  }
}
