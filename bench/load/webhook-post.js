'use strict';
// The webhook delivery ceiling, run as a separate process: the same signed POSTs as the API's
// sender (Standard Webhooks headers, HMAC-SHA256, a new connection per POST as the sender's
// `agent: false`, the body not read) of the given bodies to the receiver, `concurrency` at a time,
// in a bare loop. Reports POSTs/s and the per-POST round trip.
const http = require('node:http');
const { createHmac } = require('node:crypto');
const { runJob } = require('./child-guard');
const { histogram, summarize } = require('../lib/stats');

function post(url, key, message) {
  const timestamp = Math.floor(Date.now() / 1000);
  const signature = `v1,${createHmac('sha256', key).update(`${message.id}.${timestamp}.${message.body}`).digest('base64')}`;
  return new Promise((resolve) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(message.body),
          'user-agent': 'bench-webhook-ceiling',
          'webhook-id': message.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signature,
        },
      },
      (res) => {
        const ok = res.statusCode >= 200 && res.statusCode < 300;
        res.destroy();
        req.destroy();
        resolve(ok);
      },
    );
    req.on('error', () => resolve(false));
    req.setTimeout(10_000, () => req.destroy());
    req.end(message.body);
  });
}

async function run(job) {
  const key = Buffer.from(job.secret.replace(/^whsec_/, ''), 'base64');
  const h = histogram();
  let next = 0;
  let ok = 0;
  let failed = 0;
  const started = process.hrtime.bigint();
  const worker = async () => {
    while (next < job.messages.length) {
      const m = job.messages[next++];
      const t0 = process.hrtime.bigint();
      if (await post(job.url, key, m)) ok++;
      else failed++;
      h.recordValue(Math.max(1, Math.round(Number(process.hrtime.bigint() - t0) / 1000)));
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, worker));
  const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
  return {
    ok,
    failed,
    elapsedMs: Math.round(elapsedMs),
    rate: Math.round((ok / elapsedMs) * 1000),
    latency: summarize(h),
  };
}

runJob(run);
