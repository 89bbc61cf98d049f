import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EmbeddedDatabase } from '../../apps/api/src/database/embedded-postgres';

declare global {
  var __TEST_EMBEDDED_PG__: EmbeddedDatabase | undefined;
}

const ROOT = join(__dirname, '../..');

/**
 * Gives every test file a Postgres server to create its own database in:
 * TEST_DATABASE_URL (a real server, as in CI) or, when unset, an embedded
 * PostgreSQL started once for the run. The e2e tier has its own global setup
 * (global-setup-e2e.ts) that also builds the app: Jest runs a global setup module
 * once per run even when several projects name it, so one module cannot serve both.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.TEST_PG_ADMIN_URL) return;
  if (process.env.TEST_DATABASE_URL) {
    process.env.TEST_PG_ADMIN_URL = process.env.TEST_DATABASE_URL;
    return;
  }
  const { startEmbeddedPostgres } = await import('../../apps/api/src/database/embedded-postgres');
  const dir = mkdtempSync(join(tmpdir(), 'vpncloud-test-pg-'));
  const db = await startEmbeddedPostgres({ dataDir: dir, database: 'postgres' });
  globalThis.__TEST_EMBEDDED_PG__ = db;
  process.env.TEST_PG_ADMIN_URL = db.url;
}

/**
 * Compiles the app into a private folder (TEST_DIST_DIR) for the e2e tier, so parallel
 * runs and `npm run build` never swap files under a running test.
 */
export function buildAppForE2e(): void {
  if (process.env.TEST_DIST_DIR) return;
  mkdirSync(join(ROOT, '.tmp'), { recursive: true });
  const out = mkdtempSync(join(ROOT, '.tmp', 'dist-'));
  const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name);
  execFileSync(bin('tsc'), ['-p', 'tsconfig.build.json', '--outDir', out], { cwd: ROOT, stdio: 'inherit' });
  execFileSync(bin('tsc-alias'), ['-p', 'tsconfig.build.json', '--outDir', out], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  process.env.TEST_DIST_DIR = out;
  process.env.TEST_DIST_OWNED = '1';
}
