'use strict';
// The command round trip, shared by the command scenario and the fleet scenarios:
// POST /v1/_/devices/{id}/vpn/_connect, then _disconnect, over the connected agents (50
// connections), against a raw MQTT.js request/reply ping-pong through the same broker (50 in flight).
const { httpLoad, mqttPingPong } = require('./stack');
const { alternate, checkHttp, ratio, latencyPair } = require('./measure');

const CONCURRENCY = 50;
/** Issue 18's targets: throughput at 50 in flight, latency one at a time. */
const TARGET_RATE = 1500;
const TARGET_UNLOADED_P50_MS = 2;

/**
 * concurrency 50 measures throughput; concurrency 1 measures the unloaded latency, since with 50
 * commands always in flight p50 ≈ 50 / throughput (Little's law).
 */
async function commandRoundTrip(ctx, { devices, label, ceilingOnly = false, concurrency = CONCURRENCY }) {
  const job = {
    method: 'POST',
    // Every device is connected, then every device disconnected: a device's two commands are a
    // whole cycle of the list apart, so they do not queue behind each other.
    paths: [
      ...devices.map((d) => `/v1/_/devices/${d.id}/vpn/_connect?timeout=5000`),
      ...devices.map((d) => `/v1/_/devices/${d.id}/vpn/_disconnect?timeout=5000`),
    ],
    headers: { authorization: `Bearer ${ctx.token}` },
    connections: concurrency,
    warmupMs: ctx.opts.warmupMs,
    durationMs: ctx.opts.durationMs,
    maxRequests: ctx.opts.maxRequests,
    timeoutSec: 10,
    url: ctx.api.url,
  };
  const [requester, responder] = ctx.pingPongDevices;
  const m = await alternate(
    ctx.opts.rounds,
    () =>
      mqttPingPong(ctx, {
        brokerUrl: ctx.api.brokerUrl,
        requester,
        responder,
        concurrency,
        warmupMs: ctx.opts.warmupMs,
        durationMs: ctx.opts.durationMs,
      }),
    () => (ceilingOnly ? Promise.resolve(null) : httpLoad(ctx, 'load-command-ours', job)),
    (r) => r?.rps ?? 0,
  );
  const errorRate = checkHttp(`${label} (ours)`, m.ours);
  if (m.ceiling.ok === 0) throw new Error(`${label} (ceiling): no ping-pong reply came back`);
  const p50 = m.ours.latency.p50Ms;
  const unloaded = concurrency === 1;
  return {
    row: {
      unit: 'cmd/s',
      ours: m.ours.rps,
      ceiling: m.ceiling.rps,
      ratio: ratio(m.ours.rps, m.ceiling.rps),
      oursLatency: latencyPair(m.ours.latency),
      ceilingLatency: latencyPair(m.ceiling.latency),
      target: unloaded ? `p50 ≤ ${TARGET_UNLOADED_P50_MS} ms` : `≥ ${TARGET_RATE.toLocaleString('en')} cmd/s`,
      met: errorRate <= 0.01 && (unloaded ? p50 <= TARGET_UNLOADED_P50_MS : m.ours.rps >= TARGET_RATE),
      errorRate,
    },
    details: { devices: devices.length, concurrency, ...m },
  };
}

module.exports = { commandRoundTrip };
