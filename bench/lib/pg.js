'use strict';
// The benchmark's database: a fresh one per run on the local Postgres (BENCH_PG_ADMIN_URL, default
// postgres://postgres@127.0.0.1:5432/test), dropped at the end. Without a reachable server, an
// embedded PostgreSQL (the app's own embedded-postgres helper) is started in a temporary folder.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { randomBytes } = require('node:crypto');
const { Client } = require('pg');

const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/test';

async function reachable(url) {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** { adminUrl, server: 'local'|'embedded', stop() } */
async function postgresServer(distDir, log) {
  const adminUrl = process.env.BENCH_PG_ADMIN_URL ?? DEFAULT_ADMIN_URL;
  if (await reachable(adminUrl)) return { adminUrl, server: 'local', stop: async () => undefined };
  if (process.env.BENCH_PG_ADMIN_URL) throw new Error(`BENCH_PG_ADMIN_URL ${adminUrl} is not reachable`);
  log(`no Postgres at ${adminUrl}: starting an embedded PostgreSQL`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpncloud-bench-pg-'));
  const { startEmbeddedPostgres } = require(path.join(distDir, 'apps/api/src/database/embedded-postgres'));
  const db = await startEmbeddedPostgres({ dataDir, database: 'postgres' });
  return {
    adminUrl: db.url,
    server: 'embedded',
    stop: async () => {
      await db.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

async function withClient(url, fn) {
  const c = new Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Creates bench_<random>; returns { name, url, drop() }. */
async function createDatabase(adminUrl) {
  const name = `vpncloud_bench_${randomBytes(5).toString('hex')}`;
  await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => withClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)),
  };
}

module.exports = { postgresServer, createDatabase, withClient };
