#!/usr/bin/env node
'use strict';
// What a deep page costs by offset and by cursor: the page statements of the device list and of the
// fleet status (the compiled repositories of a bench build), at depths 0, 10,000, 50,000 and 99,500
// of an account of 100,000 devices, median of 15 runs each, one connection.
// It needs a migrated database, e.g. the one a bench run kept:
//   node bench/run.js --quick --only fleet-list --keep-db        (prints the build and the database)
//   node bench/tools/deep-page.js .tmp/bench-dist-<hash> postgres://postgres@127.0.0.1:5432/<db>
// It adds one account of 100,000 devices (inserted in SQL, then VACUUM ANALYZE) and removes it at
// the end. Measurement only; no target.
const path = require('node:path');
const { Pool } = require('pg');

const [distArg, url] = process.argv.slice(2);
if (!distArg || !url) {
  console.error('usage: node bench/tools/deep-page.js DIST_DIR DATABASE_URL');
  process.exit(2);
}
const dist = path.resolve(distArg);
const { DevicesRepository } = require(path.join(dist, 'apps/api/src/devices/devices.repository.js'));
const { FleetStatusRepository } = require(path.join(dist, 'apps/api/src/fleet/fleet-status.repository.js'));

const SCOPE = 'aaaaaaaa-0000-4000-8000-00000000d33b';
const DEVICES = 100_000;
const PAGE = 500;
const RUNS = 15;

async function median(fn) {
  const times = [];
  for (let i = 0; i < RUNS; i++) {
    const start = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(RUNS / 2)];
}

async function main() {
  const pool = new Pool({ connectionString: url, max: 1 });
  const ds = { query: (sql, params) => pool.query(sql, params).then((r) => r.rows) };
  const devices = new DevicesRepository(null, ds);
  const fleet = new FleetStatusRepository(ds);
  try {
    await pool.query(
      `INSERT INTO account (id, scope_id, optlock, name, path, vpn_subnet)
       SELECT $1::uuid, a.id, 1, 'deep-page-probe', a.path || $1::text || '/', '100.64.0.0/14'
         FROM account a WHERE a.scope_id IS NULL LIMIT 1`,
      [SCOPE],
    );
    await pool.query(
      `INSERT INTO device (scope_id, optlock, client_id, display_name, tunnel_ip, status, connection_status)
       SELECT $1, 1, 'probe-' || lpad(i::text, 6, '0'), 'probe ' || i, '100.64.0.0'::inet + i + 1,
              'ENABLED', 'NEVER_CONNECTED'
         FROM generate_series(1, $2::int) i`,
      [SCOPE, DEVICES],
    );
    await pool.query('VACUUM ANALYZE device');
    const scope = { id: SCOPE, path: '', recursive: false };
    console.log(`page of ${PAGE} in an account of ${DEVICES} devices, median of ${RUNS} (ms):`);
    console.log('depth     device list: offset  cursor   fleet status: offset  cursor');
    for (const depth of [0, 10_000, 50_000, DEVICES - PAGE]) {
      let cursor = null;
      if (depth > 0) {
        const before = JSON.parse(
          await devices.listPageJson(
            SCOPE,
            {},
            { offset: depth - 1, limit: 1, askTotalCount: false, cursor: null },
          ),
        ).items[0];
        cursor = { clientId: before.clientId, id: before.id };
      }
      const byOffset = { offset: depth, limit: PAGE, askTotalCount: false, cursor: null };
      const byCursor = { offset: 0, limit: PAGE, askTotalCount: false, cursor };
      const [a, b] = [
        await devices.listPageJson(SCOPE, {}, byOffset),
        await devices.listPageJson(SCOPE, {}, byCursor),
      ];
      if (a !== b) throw new Error(`depth ${depth}: the page by cursor differs from the page by offset`);
      const listOffset = await median(() => devices.listPageJson(SCOPE, {}, byOffset));
      const listCursor = await median(() => devices.listPageJson(SCOPE, {}, byCursor));
      const fleetOffset = await median(() => fleet.page(scope, {}, { ...byOffset, withTotal: false }, 180));
      const fleetCursor = await median(() => fleet.page(scope, {}, { ...byCursor, withTotal: false }, 180));
      console.log(
        `${String(depth).padStart(6)}    ${listOffset.toFixed(1).padStart(18)}  ${listCursor.toFixed(1).padStart(6)}` +
          `   ${fleetOffset.toFixed(1).padStart(19)}  ${fleetCursor.toFixed(1).padStart(6)}`,
      );
    }
  } finally {
    await pool.query('DELETE FROM device WHERE scope_id = $1', [SCOPE]);
    await pool.query('DELETE FROM account WHERE id = $1', [SCOPE]);
    await pool.end();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
