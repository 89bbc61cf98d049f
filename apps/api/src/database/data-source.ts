import 'reflect-metadata';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { ENTITIES } from './entities';
import { MIGRATIONS } from '../../../../migrations';

/**
 * The one DataSource definition, used by the app and by the TypeORM CLI
 * (`npm run migration:*`, which reads DATABASE_URL). Schema changes only
 * through migrations: synchronize is always off.
 */
export function dataSourceOptions(url: string): DataSourceOptions {
  return {
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: MIGRATIONS,
    synchronize: false,
    // gen_random_uuid() is built into Postgres 13+; uuid-ossp would need an extension.
    uuidExtension: 'pgcrypto',
    migrationsRun: false,
    migrationsTransactionMode: 'each',
    // Failed queries are logged by the exception filter, without their parameters (they can hold secrets).
    logging: false,
    extra: {
      max: Number(process.env.DATABASE_POOL_SIZE ?? 20),
      // The named (prepared) statements of the hot paths (database/prepared-query.ts) keep one
      // plan per connection. Left to choose, Postgres re-planned them on every call on a fleet of
      // 10,000 devices (0.35–0.46 ms each), because a generic plan's row estimates looked dearer
      // than a plan for one row. TypeORM's own queries are unnamed and planned per call as before.
      options: '-c plan_cache_mode=force_generic_plan',
    },
  };
}

export default new DataSource(
  dataSourceOptions(process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres'),
);
