'use strict';
// The ingestion ceiling: the API's own batched status upsert (VpnStatusStore.applyMany, required
// from the compiled app so the SQL is the same), driven straight from `pg` the way the API's
// StatusBatcher drives it — batches of up to 500 reports, each device at most once per batch and
// in at most one batch in flight, 3 batches in flight — with no MQTT and no framework: what the
// database alone sustains with the API's write pattern. Every report is a change (`connected`
// alternates, `seq` grows), so every stored report is also a VPN_STATUS event, as in ours.
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const { Pool } = require('pg');
const { runJob } = require('./child-guard');

/** The API's batcher defaults (apps/api/src/vpn/status-batcher.ts). */
const MAX_BATCH = 500;
const MAX_IN_FLIGHT = 3;

async function run(job) {
  require('reflect-metadata');
  const { VpnStatusStore } = require(path.join(job.distDir, 'apps/api/src/vpn/vpn-status.store'));
  const pool = new Pool({ connectionString: job.databaseUrl, max: job.poolSize });
  // The store runs a few reports as a prepared statement on the DataSource's pool (driver.master),
  // a batch through query(), as in the API.
  const store = new VpnStatusStore({
    driver: { master: pool },
    query: (sql, params) => pool.query(sql, params).then((r) => r.rows),
  });
  const devices = job.clientIds.map((clientId) => ({
    clientId,
    bootId: randomUUID(),
    seq: 0,
    connected: false,
  }));
  // Disjoint slices of the devices, one per batch in flight: no device is in two batches at once,
  // as the batcher guarantees; a slice holds at most MAX_BATCH devices.
  const inFlight = Math.min(MAX_IN_FLIGHT, devices.length);
  const batchSize = Math.min(MAX_BATCH, Math.floor(devices.length / inFlight));
  const slices = Array.from({ length: inFlight }, (_v, i) =>
    devices.slice(i * batchSize, (i + 1) * batchSize),
  );
  let done = 0;
  let stored = 0;
  let stop = false;
  const worker = async (slice) => {
    while (!stop && done < job.maxReports) {
      const sentOn = new Date();
      const batch = slice.map((d) => {
        d.seq++;
        d.connected = !d.connected;
        return {
          account: job.account,
          clientId: d.clientId,
          report: {
            connected: d.connected,
            ipAddress: d.connected ? '10.100.0.1' : '0.0.0.0',
            status: d.connected ? 'connected' : 'idle',
            statusCode: d.connected ? '004' : '003',
            bootId: d.bootId,
            seq: d.seq,
          },
          sentOn,
        };
      });
      const rows = await store.applyMany(batch);
      done += batch.length;
      stored += rows.length;
    }
  };
  const phase = async (ms) => {
    stop = false;
    done = 0;
    stored = 0;
    const started = process.hrtime.bigint();
    const timer = setTimeout(() => (stop = true), ms);
    await Promise.all(slices.map(worker));
    clearTimeout(timer);
    return { done, stored, elapsedMs: Number(process.hrtime.bigint() - started) / 1e6 };
  };
  if (job.warmupMs > 0) await phase(job.warmupMs);
  const m = await phase(job.durationMs);
  await pool.end();
  if (m.stored !== m.done)
    throw new Error(`ingest ceiling: ${m.done - m.stored} of ${m.done} reports not stored`);
  return {
    batchSize,
    inFlight,
    reports: m.done,
    stored: m.stored,
    elapsedMs: Math.round(m.elapsedMs),
    rate: Math.round((m.stored / m.elapsedMs) * 1000),
  };
}

runJob(run);
