'use strict';
// Status ingestion load, run as a separate process: D simulated devices (MQTT.js clients with
// their own credentials) publish VPN status reports, QoS 1 like the agent, at a given total rate,
// round-robin so that one device's reports are D/rate seconds apart. Every report is a change
// (connected alternates) with a growing seq, so the cloud stores each one as a VPN_STATUS event
// and the harness can count them. Steps are driven by the parent: {type:'step', rate, durationMs}
// ... {type:'stop'}.
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const mqtt = require('mqtt');
const { runJob } = require('./child-guard');

function connectOne(job, c) {
  const client = mqtt.connect(job.brokerUrl, {
    clientId: c.clientId,
    username: c.username || undefined,
    password: c.password || undefined,
    protocolVersion: 4,
    clean: true,
    keepalive: 60,
    reconnectPeriod: 0,
    connectTimeout: 20_000,
  });
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', (err) => reject(new Error(`${c.clientId}: ${err.message}`)));
    // A broker that drops the socket before CONNACK (e.g. over its per-address limit) gives no
    // 'error' with reconnectPeriod 0: without this the connect would wait forever.
    client.once('close', () => reject(new Error(`${c.clientId}: connection closed before CONNACK`)));
  });
}

/**
 * Devices connected at a time. Every simulated device comes from 127.0.0.1, and the embedded
 * broker refuses more than MQTT_MAX_UNAUTHENTICATED_PER_ADDRESS (default 64) connections from one
 * address that have not authenticated yet: stay below it.
 */
const CONNECT_WAVE = 32;

async function run(job, progress) {
  const proto = require(path.join(job.distDir, 'libs/protocol/src'));
  const devices = [];
  for (let i = 0; i < job.creds.length; i += CONNECT_WAVE) {
    const batch = job.creds.slice(i, i + CONNECT_WAVE);
    const clients = await Promise.all(batch.map((c) => connectOne(job, c)));
    batch.forEach((c, k) =>
      devices.push({
        client: clients[k],
        topic: proto.Topics.status(job.account, c.clientId),
        bootId: randomUUID(),
        seq: 0,
        connected: false,
      }),
    );
  }
  const totals = { sent: 0, acked: 0, failed: 0 };
  let cursor = 0;
  const publishOne = () => {
    const d = devices[cursor++ % devices.length];
    d.seq++;
    d.connected = !d.connected;
    const payload = proto.encodeKuraPayload({
      timestamp: Date.now(),
      metrics: proto.statusMetrics({
        connected: d.connected,
        ipAddress: d.connected ? '10.100.0.1' : '0.0.0.0',
        status: d.connected ? 'connected' : 'idle',
        statusCode: d.connected ? '004' : '003',
        bootId: d.bootId,
        seq: d.seq,
      }),
    });
    totals.sent++;
    d.client.publish(d.topic, payload, { qos: 1 }, (err) => (err ? totals.failed++ : totals.acked++));
  };

  const runStep = (rate, durationMs) =>
    new Promise((resolve) => {
      const sentAtStart = totals.sent;
      const started = process.hrtime.bigint();
      const elapsed = () => Number(process.hrtime.bigint() - started) / 1e6;
      let lastReport = 0;
      const maxPerTick = Math.max(1, Math.ceil(rate * 0.02));
      const timer = setInterval(() => {
        const t = Math.min(elapsed(), durationMs);
        const due = Math.floor((rate * t) / 1000) - (totals.sent - sentAtStart);
        for (let i = 0; i < Math.min(due, maxPerTick); i++) publishOne();
        if (t - lastReport >= 200) {
          lastReport = t;
          progress({ kind: 'tick', sent: totals.sent, acked: totals.acked, t: Date.now() });
        }
        if (t >= durationMs) {
          clearInterval(timer);
          const ms = elapsed();
          resolve({
            rate,
            sent: totals.sent - sentAtStart,
            achievedRate: Math.round(((totals.sent - sentAtStart) / ms) * 1000),
            elapsedMs: Math.round(ms),
            totalSent: totals.sent,
            totalAcked: totals.acked,
          });
        }
      }, 2);
    });

  process.send({ type: 'ready', data: { devices: devices.length } });
  for (;;) {
    const m = await new Promise((resolve) => process.once('message', resolve));
    if (m?.type !== 'step') break;
    const step = await runStep(m.rate, m.durationMs);
    progress({ kind: 'step-done', ...step });
  }
  const deadline = Date.now() + 5000;
  while (totals.acked + totals.failed < totals.sent && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await Promise.all(devices.map((d) => d.client.endAsync().catch(() => undefined)));
  return totals;
}

runJob(run);
