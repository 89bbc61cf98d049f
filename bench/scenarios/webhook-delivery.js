'use strict';
// Webhook delivery: a local receiver (node:http on 127.0.0.1, port 0; the API runs with
// WEBHOOK_ALLOW_PRIVATE=true) is registered as a webhook of the bench account for every event
// type, then simulated devices publish a burst of N VPN status changes over MQTT (the real ingest
// path). Measured at the receiver until every event is delivered (bounded): deliveries/s (first to
// last delivery), delivery lag (the event's occurredOn → its arrival; includes the dispatcher's
// poll interval), and exactly once: every expected event id arrives, with one webhook-id each,
// every signature valid. Ceiling: a bare node loop (load/webhook-post.js) POSTing the same signed
// bodies to the same receiver with the sender's concurrency (WEBHOOK_CONCURRENCY default, 8) and
// the sender's new connection per POST; its latency is the POST round trip.
const http = require('node:http');
const path = require('node:path');
const { createHmac, timingSafeEqual } = require('node:crypto');
const { runForked } = require('../lib/procs');
const { LOAD_DIR } = require('../lib/stack');
const { Api } = require('../lib/api');
const { startPublisher } = require('../lib/publisher');
const { sleep, ratio, latencyPair } = require('../lib/measure');
const { histogram, summarize } = require('../lib/stats');

const CONCURRENCY = 8; // the API's WEBHOOK_CONCURRENCY default
const EVENTS = ['vpn.connected', 'vpn.disconnected', 'vpn.error', 'device.connection'];

/** The receiver: answers 204 at once, records every delivery. */
async function startReceiver() {
  const state = { key: null, deliveries: [], badSignatures: 0 };
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const at = Date.now();
      res.writeHead(204).end();
      const body = Buffer.concat(chunks).toString('utf8');
      const id = req.headers['webhook-id'];
      const ts = req.headers['webhook-timestamp'];
      if (state.key) {
        const want = Buffer.from(
          `v1,${createHmac('sha256', state.key).update(`${id}.${ts}.${body}`).digest('base64')}`,
        );
        const got = Buffer.from(String(req.headers['webhook-signature'] ?? ''));
        if (got.length !== want.length || !timingSafeEqual(got, want)) state.badSignatures++;
      }
      let eventId = null;
      let occurredOn = NaN;
      try {
        const data = JSON.parse(body).data ?? {};
        eventId = data.eventId ?? null;
        occurredOn = Date.parse(data.occurredOn);
      } catch {
        /* counted as a delivery without an event id */
      }
      state.deliveries.push({ id, eventId, at, occurredOn });
    });
  });
  server.keepAliveTimeout = 5000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}/hook`,
    state,
    reset(key) {
      state.key = key;
      state.deliveries = [];
      state.badSignatures = 0;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Exactly-once check and rates of the deliveries the receiver got, against the expected event ids. */
function summarizeDeliveries(deliveries, expected, withLag) {
  const ids = new Set();
  let duplicateIds = 0;
  const events = new Map();
  const lag = histogram();
  for (const d of deliveries) {
    if (ids.has(d.id)) duplicateIds++;
    ids.add(d.id);
    if (d.eventId !== null) events.set(String(d.eventId), (events.get(String(d.eventId)) ?? 0) + 1);
    if (withLag && !Number.isNaN(d.occurredOn)) lag.recordValue(Math.max(1, (d.at - d.occurredOn) * 1000));
  }
  let missing = 0;
  for (const e of expected) if (!events.has(e)) missing++;
  const duplicateEvents = [...events.values()].filter((n) => n > 1).length;
  const first = deliveries.length ? Math.min(...deliveries.map((d) => d.at)) : 0;
  const last = deliveries.length ? Math.max(...deliveries.map((d) => d.at)) : 0;
  const spanMs = last - first;
  return {
    delivered: deliveries.length,
    expected: expected.length,
    missing,
    duplicateIds,
    duplicateEvents,
    spanMs,
    rate: spanMs > 0 ? Math.round((deliveries.length / spanMs) * 1000) : null,
    lastDeliveryAt: last,
    lag: withLag ? summarize(lag) : null,
  };
}

module.exports = {
  id: 'webhook-delivery',
  title: 'Webhook delivery',
  timeoutMs: () => 300_000,
  async run(ctx) {
    const o = ctx.opts.webhook;
    const api = new Api(ctx.api.url, ctx.token);
    const devices = ctx.devices.slice(0, o.devices);
    await ctx.sql(
      `UPDATE device_vpn_status SET connected = false, ip_address = '0.0.0.0', status = 'idle', status_code = '003'
        WHERE device_id = ANY($1::uuid[])`,
      [devices.map((d) => d.id)],
    );
    const receiver = await startReceiver();
    let publisher;
    let webhook;
    let ours;
    let ceiling;
    let producedMs;
    try {
      publisher = await startPublisher(ctx, 'load-webhook-publisher', devices, 240_000);
      webhook = await api.call('POST', '/v1/_/webhooks', {
        url: receiver.url,
        events: EVENTS,
        description: 'benchmark receiver',
      });
      const key = Buffer.from(webhook.secret.replace(/^whsec_/, ''), 'base64');
      receiver.reset(key);
      const { rows } = await ctx.sql(`SELECT COALESCE(max(id), 0)::text AS id FROM device_event`);
      const after = rows[0].id;
      const t0 = Date.now();
      const step = await publisher.step(o.rate, Math.ceil((o.events / o.rate) * 1000));
      producedMs = Date.now() - t0;
      // The expected events: every stored public event of the account after `after` (each report
      // is a change); then wait, bounded, until the receiver has one delivery per event.
      const deadline = Date.now() + 120_000;
      let expected = [];
      const readExpected = async () =>
        (
          await ctx.sql(
            `SELECT id::text AS id FROM device_event WHERE scope_id = $1 AND id > $2
                AND type IN ('VPN_STATUS', 'BIRTH', 'DC', 'LWT') ORDER BY id`,
            [ctx.account.id, after],
          )
        ).rows.map((r) => r.id);
      while (Date.now() < deadline) {
        expected = await readExpected();
        if (expected.length >= step.sent && receiver.state.deliveries.length >= expected.length) break;
        await sleep(100);
      }
      await sleep(500); // a late duplicate would show here
      ours = {
        ...summarizeDeliveries(receiver.state.deliveries, expected, true),
        badSignatures: receiver.state.badSignatures,
        sent: step.sent,
        sentRate: step.achievedRate,
        producedMs,
        burstEndedAt: t0 + producedMs,
      };
      const attempts = await ctx.sql(
        `SELECT status, count(*)::int AS n, max(attempts)::int AS max_attempts FROM webhook_delivery
          WHERE webhook_id = $1 GROUP BY status`,
        [webhook.id],
      );
      ours.outbox = attempts.rows;

      // Ceiling: the same bodies, signed the same way, from a bare loop.
      const { rows: bodies } = await ctx.sql(
        `SELECT message_id AS id, payload AS body FROM webhook_delivery WHERE webhook_id = $1 ORDER BY event_id`,
        [webhook.id],
      );
      receiver.reset(key);
      const limit = 120_000;
      const post = await runForked(
        'load-webhook-ceiling',
        path.join(LOAD_DIR, 'webhook-post.js'),
        {
          url: receiver.url,
          secret: webhook.secret,
          messages: bodies,
          concurrency: CONCURRENCY,
          hardLimitMs: limit,
        },
        { timeoutMs: limit + 5000 },
      ).result;
      ceiling = {
        ...summarizeDeliveries(
          receiver.state.deliveries,
          bodies.map((b) => b.id),
          false,
        ),
        badSignatures: receiver.state.badSignatures,
        post,
      };
    } finally {
      if (webhook) await api.call('DELETE', `/v1/_/webhooks/${webhook.id}`).catch(() => undefined);
      await publisher?.stop();
      await receiver.close();
    }
    if (ours.delivered === 0)
      throw new Error(`webhook delivery: nothing delivered (${JSON.stringify(ours)})`);
    const exactlyOnce =
      ours.missing === 0 && ours.duplicateIds === 0 && ours.duplicateEvents === 0 && ours.badSignatures === 0;
    return {
      rows: [
        {
          scenario: `Webhook delivery (burst of ${ours.sent} status changes over MQTT, ${CONCURRENCY} in flight; lag occurredOn → received)`,
          unit: 'deliveries/s',
          ours: ours.rate,
          ceiling: ceiling.post.rate,
          ratio: ratio(ours.rate, ceiling.post.rate),
          oursLatency: latencyPair(ours.lag),
          ceilingLatency: latencyPair(ceiling.post.latency),
          target: 'every event delivered exactly once',
          met: exactlyOnce,
          errorRate: (ours.missing + ours.duplicateIds) / Math.max(1, ours.expected),
          note:
            `ceiling: a bare node loop POSTing the same signed bodies, ${CONCURRENCY} at a time (its latency: ` +
            `the POST round trip); ours ${ours.delivered} deliveries for ${ours.expected} events (missing ` +
            `${ours.missing}, duplicate webhook-ids ${ours.duplicateIds}, bad signatures ${ours.badSignatures}), ` +
            `last one ${ours.lastDeliveryAt - ours.burstEndedAt} ms after the burst ended`,
        },
      ],
      details: { devices: devices.length, ...o, ours, ceiling },
    };
  },
};
