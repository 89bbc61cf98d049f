'use strict';
// SSE fan-out: S subscribers on GET /v1/_/vpn/events (bearer token) while simulated devices
// publish VPN status reports over MQTT (the real ingest path; every report is a change, so every
// one becomes an event) at about R per second for a few seconds. Measured in the subscriber
// process (load/sse-subscribers.js): delivered events/s per subscriber, lag from the event's
// occurredOn (the cloud's receipt, stamped by the database) to its arrival, and whether every
// subscriber got every event of the account (the ids in the database) once, in increasing order.
// Subscribers start from Last-Event-ID = the newest event before the run, so the expected set is
// exact. Ceiling: the same subscribers reading the bare node:http SSE tail of device_event
// (ceilings/http-pg-server.js: the simplest gap-free poll at the same 300 ms interval), fed by the
// same ingest in the same run.
const path = require('node:path');
const { runForked } = require('../lib/procs');
const { LOAD_DIR, startCeilingServer } = require('../lib/stack');
const { startPublisher } = require('../lib/publisher');
const { sleep, ratio, latencyPair } = require('../lib/measure');

const PUBLIC_TYPES = `('VPN_STATUS', 'BIRTH', 'DC', 'LWT')`;

async function maxEventId(ctx) {
  const { rows } = await ctx.sql(`SELECT COALESCE(max(id), 0)::text AS id FROM device_event`);
  return rows[0].id;
}

async function eventIdsAfter(ctx, after) {
  const { rows } = await ctx.sql(
    `SELECT id::text AS id FROM device_event WHERE scope_id = $1 AND id > $2 AND type IN ${PUBLIC_TYPES} ORDER BY id`,
    [ctx.account.id, after],
  );
  return rows.map((r) => Number(r.id));
}

/** One measured run against `url`: subscribers connect, the publisher runs a step, all is checked. */
async function measure(ctx, publisher, { name, url, headers }) {
  const o = ctx.opts.sse;
  const after = await maxEventId(ctx);
  const limit = o.durationMs + 90_000;
  let readyResolve;
  let counts = [];
  const ready = new Promise((r) => (readyResolve = r));
  const subs = runForked(
    name,
    path.join(LOAD_DIR, 'sse-subscribers.js'),
    {
      url,
      headers: { ...headers, 'last-event-id': after },
      subscribers: o.subscribers,
      hardLimitMs: limit,
    },
    {
      timeoutMs: limit + 5000,
      onMessage: (m) => (m.type === 'ready' ? readyResolve() : (counts = m.data.counts)),
    },
  );
  try {
    await Promise.race([ready, subs.result]);
    const step = await publisher.step(o.rate, o.durationMs);
    // Every report stored (each is a change), then every subscriber caught up; both bounded.
    const deadline = Date.now() + 20_000;
    let expected = await eventIdsAfter(ctx, after);
    while (expected.length < step.sent && Date.now() < deadline) {
      await sleep(100);
      expected = await eventIdsAfter(ctx, after);
    }
    expected = await eventIdsAfter(ctx, after);
    while (Date.now() < deadline && (counts.length === 0 || Math.min(...counts) < expected.length)) {
      await sleep(100);
    }
    subs.proc.child.send({ type: 'stop', expected });
    const r = await subs.result;
    return { ...r, sent: step.sent, sentRate: step.achievedRate, stored: expected.length };
  } finally {
    await subs.proc.stop('SIGTERM', 3000);
  }
}

module.exports = {
  id: 'sse-fanout',
  title: 'SSE fan-out',
  timeoutMs: (ctx) => 2 * (ctx.opts.sse.durationMs + 60_000) + 120_000,
  async run(ctx) {
    const o = ctx.opts.sse;
    const devices = ctx.devices.slice(0, o.devices);
    // Every report of the run must be a change: the first one says connected, so start from idle.
    await ctx.sql(
      `UPDATE device_vpn_status SET connected = false, ip_address = '0.0.0.0', status = 'idle', status_code = '003'
        WHERE device_id = ANY($1::uuid[])`,
      [devices.map((d) => d.id)],
    );
    const publisher = await startPublisher(
      ctx,
      'load-sse-publisher',
      devices,
      2 * (o.durationMs + 60_000) + 60_000,
    );
    let ceilingServer;
    let ceiling;
    let ours;
    try {
      ceilingServer = await startCeilingServer(ctx);
      ceiling = await measure(ctx, publisher, {
        name: 'load-sse-ceiling',
        url: `${ceilingServer.url}/v1/_/vpn/events`,
        headers: {},
      });
      await ceilingServer.stop();
      ceilingServer = null;
      ours = await measure(ctx, publisher, {
        name: 'load-sse-ours',
        url: `${ctx.api.url}/v1/_/vpn/events`,
        headers: { authorization: `Bearer ${ctx.token}` },
      });
    } finally {
      await ceilingServer?.stop();
      await publisher.stop();
    }
    for (const [label, m] of [
      ['ours', ours],
      ['ceiling', ceiling],
    ]) {
      if (m.delivered === 0)
        throw new Error(`SSE fan-out (${label}): no event delivered (${JSON.stringify(m)})`);
    }
    const complete = ours.complete === ours.subscribers && ours.unexpected === 0;
    const lost = ours.missing + ours.duplicates + ours.outOfOrder;
    return {
      rows: [
        {
          scenario:
            `SSE fan-out (${o.subscribers} subscribers, ~${o.rate} status changes/s over MQTT for ` +
            `${o.durationMs / 1000} s; lag occurredOn → received)`,
          unit: 'events/s per subscriber (median)',
          ours: ours.eventsPerSecond.median,
          ceiling: ceiling.eventsPerSecond.median,
          ratio: ratio(ours.eventsPerSecond.median, ceiling.eventsPerSecond.median),
          oursLatency: latencyPair(ours.lag),
          ceilingLatency: latencyPair(ceiling.lag),
          target: 'every subscriber gets every event once, in order',
          met: complete,
          errorRate: lost / Math.max(1, ours.expected * ours.subscribers),
          note:
            `ceiling: a bare node:http SSE server tailing device_event (gap-free watermark, same 300 ms poll); ` +
            `ours ${ours.complete}/${ours.subscribers} subscribers complete (${ours.expected} events each; ` +
            `missing ${ours.missing}, duplicates ${ours.duplicates}, out of order ${ours.outOfOrder}), ` +
            `ceiling ${ceiling.complete}/${ceiling.subscribers}; sent ${ours.sent} reports at ${ours.sentRate}/s`,
        },
      ],
      details: { devices: devices.length, ...o, ours, ceiling },
    };
  },
};
