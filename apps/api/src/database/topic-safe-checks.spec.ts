import { getMetadataArgsStorage, type MigrationInterface, type QueryRunner } from 'typeorm';
import { ACCOUNT_NAME_PATTERN, CLIENT_ID_PATTERN } from '@app/protocol';
import { MIGRATIONS } from '../../../../migrations';
import { ENTITIES } from './entities';

// The database refuses names a topic cannot carry with CHECK constraints whose regexes are written
// out in the migrations (a migration never changes once released). These tests keep them equal to
// the patterns of @app/protocol that the topic builders, DTOs and agents use.
const CHECKS: ReadonlyArray<[constraint: string, column: string, pattern: RegExp]> = [
  ['account_name_topic_safe', 'name', ACCOUNT_NAME_PATTERN],
  ['device_client_id_topic_safe', 'client_id', CLIENT_ID_PATTERN],
  ['gateway_name_topic_safe', 'name', CLIENT_ID_PATTERN],
];

/** Every SQL statement the migrations run on an empty database, in order. */
async function migrationSql(): Promise<string[]> {
  const statements: string[] = [];
  const runner = {
    query: async (sql: string) => {
      statements.push(sql);
      return [];
    },
  } as unknown as QueryRunner;
  for (const migration of MIGRATIONS) {
    await new (migration as new () => MigrationInterface)().up(runner);
  }
  return statements;
}

/** The regex of the last definition of `constraint` in the migrations. */
function migrationRegex(statements: string[], constraint: string, column: string): string | undefined {
  const definition = new RegExp(`CONSTRAINT "${constraint}" CHECK \\("${column}" ~ '([^']*)'\\)`, 'g');
  let found: string | undefined;
  for (const sql of statements) for (const m of sql.matchAll(definition)) found = m[1];
  return found;
}

describe('topic-safe CHECK constraints', () => {
  it.each(CHECKS)(
    'should give %s in the migrations the regex of the protocol pattern',
    async (constraint, column, pattern) => {
      expect(migrationRegex(await migrationSql(), constraint, column)).toBe(pattern.source);
    },
  );

  it.each(CHECKS)(
    'should give %s on the entity the regex of the protocol pattern',
    (constraint, column, pattern) => {
      const check = getMetadataArgsStorage().checks.find(
        (c) => c.name === constraint && ENTITIES.includes(c.target as (typeof ENTITIES)[number]),
      );
      expect(check?.expression).toBe(`"${column}" ~ '${pattern.source}'`);
    },
  );
});
