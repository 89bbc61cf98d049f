'use strict';
// The ingestion ceiling: the API's own status upsert (VpnStatusStore.apply, required from the
// compiled app so the SQL is the same), driven straight from `pg` with as many statements in flight
// as the API's pool has connections, no MQTT and no framework. What the database alone sustains.
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const { Pool } = require('pg');
const { runJob } = require('./child-guard');

async function run(job) {
  require('reflect-metadata');
  const { VpnStatusStore } = require(path.join(job.distDir, 'apps/api/src/vpn/vpn-status.store'));
  const pool = new Pool({ connectionString: job.databaseUrl, max: job.poolSize });
  const store = new VpnStatusStore({ query: (sql, params) => pool.query(sql, params).then((r) => r.rows) });
  const devices = job.clientIds.map((clientId) => ({
    clientId,
    bootId: randomUUID(),
    seq: 0,
    connected: false,
  }));
  let cursor = 0;
  let done = 0;
  let stored = 0;
  let stop = false;
  const worker = async () => {
    while (!stop && done < job.maxReports) {
      const d = devices[cursor++ % devices.length];
      d.seq++;
      d.connected = !d.connected;
      const r = await store.apply(
        job.account,
        d.clientId,
        {
          connected: d.connected,
          ipAddress: d.connected ? '10.100.0.1' : '0.0.0.0',
          status: d.connected ? 'connected' : 'idle',
          statusCode: d.connected ? '004' : '003',
          bootId: d.bootId,
          seq: d.seq,
        },
        new Date(),
      );
      done++;
      if (r) stored++;
    }
  };
  const phase = async (ms) => {
    stop = false;
    done = 0;
    stored = 0;
    const started = process.hrtime.bigint();
    const timer = setTimeout(() => (stop = true), ms);
    await Promise.all(Array.from({ length: job.poolSize }, worker));
    clearTimeout(timer);
    return { done, stored, elapsedMs: Number(process.hrtime.bigint() - started) / 1e6 };
  };
  if (job.warmupMs > 0) await phase(job.warmupMs);
  const m = await phase(job.durationMs);
  await pool.end();
  return {
    concurrency: job.poolSize,
    reports: m.done,
    stored: m.stored,
    elapsedMs: Math.round(m.elapsedMs),
    rate: Math.round((m.stored / m.elapsedMs) * 1000),
  };
}

runJob(run);
