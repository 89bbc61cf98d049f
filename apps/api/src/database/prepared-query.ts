import type { Pool, QueryResultRow } from 'pg';
import { QueryFailedError, type DataSource } from 'typeorm';

/**
 * Runs a named (prepared) statement on the DataSource's own `pg` pool: Postgres parses and plans it
 * once per connection instead of on every call. Meant for the few statements on the hot path of a
 * request (the status read). As with TypeORM's own `query`, an unreachable database comes out as
 * the driver's error and a failed statement as a QueryFailedError, so the exception filter maps
 * both the same way as any other query's.
 */
export async function preparedQuery<R extends QueryResultRow>(
  dataSource: DataSource,
  name: string,
  text: string,
  values: unknown[],
): Promise<R[]> {
  const pool = (dataSource.driver as unknown as { master: Pool }).master;
  const client = await pool.connect();
  try {
    const res = await client.query<R>({ name, text, values });
    client.release();
    return res.rows;
  } catch (err) {
    // A failed statement may have left the connection unusable: the pool drops it.
    const error = err instanceof Error ? err : new Error(String(err));
    client.release(error);
    throw new QueryFailedError(text, values, error);
  }
}
