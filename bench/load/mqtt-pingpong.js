'use strict';
// The command round-trip ceiling: a raw MQTT.js request/reply ping-pong through the same broker,
// QoS 1 both ways, with payloads the size of a real connect command and its reply. Two processes:
// a responder (the "agent") answers every request at once; a requester (the "cloud") keeps
// `concurrency` requests in flight and records each round trip in µs.
//
// The embedded broker enforces the device ACL, so both sides are devices of the bench account:
// the requester publishes on the responder's `$EDC/{account}/{responder}/VPNCLIENT-V2/REPLY/{n}`
// (devices may publish replies to any client of their account) and the responder answers on the
// requester's; each side subscribes only below its own client id.
const path = require('node:path');
const { randomUUID } = require('node:crypto');
const mqtt = require('mqtt');
const { runJob } = require('./child-guard');
const { histogram, summarize } = require('../lib/stats');

function connect(job, creds) {
  const client = mqtt.connect(job.brokerUrl, {
    clientId: creds.clientId,
    username: creds.username || undefined,
    password: creds.password || undefined,
    protocolVersion: 4,
    clean: true,
    keepalive: 30,
    reconnectPeriod: 0,
    connectTimeout: 10_000,
  });
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', reject);
    client.once('close', () => reject(new Error(`connection of ${creds.clientId} closed`)));
  });
}

const replyTopic = (account, clientId, id) => `$EDC/${account}/${clientId}/VPNCLIENT-V2/REPLY/${id}`;

async function responder(job) {
  const proto = require(path.join(job.distDir, 'libs/protocol/src'));
  const payload = proto.encodeKuraPayload(
    proto.buildCommandReply({
      code: 200,
      status: {
        connected: true,
        ipAddress: '10.100.0.2',
        status: 'connected',
        statusCode: '004',
        bootId: randomUUID(),
        seq: 1,
      },
    }),
  );
  const client = await connect(job, job.self);
  await client.subscribeAsync(`$EDC/${job.account}/${job.self.clientId}/#`, { qos: 1 });
  let answered = 0;
  client.on('message', (topic) => {
    const id = topic.slice(topic.lastIndexOf('/') + 1);
    answered++;
    client.publish(replyTopic(job.account, job.peer.clientId, id), payload, { qos: 1 });
  });
  process.send({ type: 'ready' });
  await new Promise((resolve) => process.on('message', (m) => m?.type === 'stop' && resolve()));
  await client.endAsync();
  return { answered };
}

async function requester(job) {
  const proto = require(path.join(job.distDir, 'libs/protocol/src'));
  const profile = proto.encodeVpnProfile({
    type: 'wireguard',
    tunnelAddress: '10.100.0.2/16',
    serverEndpoint: 'vpn.example.invalid:51820',
    serverPublicKey: Buffer.alloc(32).toString('base64'),
    allowedIps: ['10.100.0.0/16'],
    dns: [],
    keepalive: 25,
  });
  const payload = proto.encodeKuraPayload(
    proto.buildCommandRequest({
      requestId: randomUUID(),
      requesterClientId: job.self.clientId,
      body: profile,
    }),
  );
  const client = await connect(job, job.self);
  await client.subscribeAsync(`$EDC/${job.account}/${job.self.clientId}/VPNCLIENT-V2/REPLY/+`, { qos: 1 });
  const inflight = new Map();
  let seq = 0;
  let phase = null;
  const sendOne = () => {
    const id = String(++seq);
    inflight.set(id, process.hrtime.bigint());
    phase.sent++;
    client.publish(replyTopic(job.account, job.peer.clientId, id), payload, { qos: 1 });
  };
  client.on('message', (topic) => {
    const id = topic.slice(topic.lastIndexOf('/') + 1);
    const t0 = inflight.get(id);
    if (t0 === undefined) return;
    inflight.delete(id);
    const p = phase;
    p.received++;
    if (!p.closed) p.inWindow++;
    p.record(Number(process.hrtime.bigint() - t0) / 1000);
    if (!p.closed && p.sent < p.maxRequests) sendOne();
  });
  const runPhase = async (durationMs, record) => {
    phase = { sent: 0, received: 0, inWindow: 0, closed: false, maxRequests: job.maxRequests, record };
    const started = process.hrtime.bigint();
    for (let i = 0; i < job.concurrency; i++) sendOne();
    await new Promise((r) => setTimeout(r, durationMs));
    phase.closed = true;
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    const p = phase;
    // Let the requests in flight come back (bounded), so the next phase starts from zero.
    const deadline = Date.now() + 5000;
    while (inflight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const lost = inflight.size;
    inflight.clear();
    return { ...p, elapsedMs, lost };
  };
  if (job.warmupMs > 0) await runPhase(job.warmupMs, () => undefined);
  const h = histogram();
  const m = await runPhase(job.durationMs, (us) => h.recordValue(Math.max(1, Math.round(us))));
  await client.endAsync();
  return {
    concurrency: job.concurrency,
    elapsedMs: Math.round(m.elapsedMs),
    sent: m.sent,
    ok: m.received,
    lost: m.lost,
    rps: Math.round((m.inWindow / m.elapsedMs) * 1000),
    payloadBytes: { request: payload.length },
    latency: summarize(h),
  };
}

runJob((job) => (job.role === 'responder' ? responder(job) : requester(job)));
