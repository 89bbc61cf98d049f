'use strict';
// SSE subscribers, run as a separate process: N streaming readers of one text/event-stream URL
// (node:http, the frames parsed by hand: `id:`, `event:`, `data:`, comments skipped). Each keeps
// the ids it got and the lag of every event (received − the event's occurredOn, both this
// machine's clock, ms resolution). Sends {type:'ready'} once every stream answered 200, progress
// {counts} every 250 ms; on {type:'stop', expected:[ids]} it closes the streams and checks every
// subscriber against the expected ids (missing, duplicates, out of order, unexpected).
const http = require('node:http');
const { runJob } = require('./child-guard');
const { histogram, summarize } = require('../lib/stats');

function subscribe(job, i, lag) {
  const sub = { i, ids: [], firstAt: 0, lastAt: 0, firstOccurred: 0, frames: 0, closed: null, req: null };
  return new Promise((resolve, reject) => {
    const url = new URL(job.url);
    const req = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: 'GET',
        agent: false,
        headers: { accept: 'text/event-stream', ...job.headers },
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new Error(`subscriber ${i}: ${res.statusCode}`));
        }
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (chunk) => {
          buf += chunk;
          let end;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, end);
            buf = buf.slice(end + 2);
            onFrame(sub, frame, lag);
          }
        });
        res.on('end', () => (sub.closed ??= 'end'));
        res.on('error', (err) => (sub.closed ??= err.message));
        resolve(sub);
      },
    );
    sub.req = req;
    req.on('error', (err) => {
      sub.closed ??= err.message;
      reject(new Error(`subscriber ${i}: ${err.message}`));
    });
    req.end();
  });
}

function onFrame(sub, frame, lag) {
  if (!frame.startsWith('id: ')) return; // comments, retry:, or a frame without id
  const nl = frame.indexOf('\n');
  const id = Number(frame.slice(4, nl));
  const now = Date.now();
  const k = frame.indexOf('"occurredOn":"');
  const occurred = k >= 0 ? Date.parse(frame.slice(k + 14, k + 38)) : NaN;
  if (frame.includes('\nevent: reset') || frame.includes('\nevent: close')) {
    sub.closed ??= frame.slice(nl + 1, nl + 60);
    return;
  }
  sub.frames++;
  sub.ids.push(id);
  if (sub.firstAt === 0) {
    sub.firstAt = now;
    sub.firstOccurred = occurred;
  }
  sub.lastAt = now;
  if (!Number.isNaN(occurred)) lag.recordValue(Math.max(1, (now - occurred) * 1000));
}

function check(sub, expected) {
  const want = new Set(expected);
  const seen = new Set();
  let duplicates = 0;
  let outOfOrder = 0;
  let unexpected = 0;
  let prev = -Infinity;
  for (const id of sub.ids) {
    if (seen.has(id)) duplicates++;
    seen.add(id);
    if (id <= prev) outOfOrder++;
    prev = id;
    if (!want.has(id)) unexpected++;
  }
  let missing = 0;
  for (const id of expected) if (!seen.has(id)) missing++;
  // Delivered events per second: from the first event's occurrence to the last one received.
  const spanMs = sub.lastAt - (Number.isNaN(sub.firstOccurred) ? sub.firstAt : sub.firstOccurred);
  return {
    received: sub.ids.length,
    missing,
    duplicates,
    outOfOrder,
    unexpected,
    closed: sub.closed,
    eventsPerSecond: spanMs > 0 ? Math.round((sub.ids.length / spanMs) * 1000) : null,
  };
}

async function run(job, progress) {
  const lag = histogram();
  const subs = [];
  try {
    for (let i = 0; i < job.subscribers; i++) subs.push(await subscribe(job, i, lag));
    process.send({ type: 'ready', data: { subscribers: subs.length } });
    const ticker = setInterval(() => progress({ counts: subs.map((s) => s.ids.length) }), 250);
    const stop = await new Promise((resolve) => process.once('message', resolve));
    clearInterval(ticker);
    const expected = stop?.expected ?? [];
    const per = subs.map((s) => check(s, expected));
    const rates = per.map((p) => p.eventsPerSecond ?? 0).sort((a, b) => a - b);
    return {
      subscribers: subs.length,
      expected: expected.length,
      complete: per.filter((p) => p.missing === 0 && p.duplicates === 0 && p.outOfOrder === 0).length,
      missing: per.reduce((n, p) => n + p.missing, 0),
      duplicates: per.reduce((n, p) => n + p.duplicates, 0),
      outOfOrder: per.reduce((n, p) => n + p.outOfOrder, 0),
      unexpected: per.reduce((n, p) => n + p.unexpected, 0),
      closedEarly: per.filter((p) => p.closed).map((p) => p.closed),
      eventsPerSecond: {
        min: rates[0],
        median: rates[Math.floor(rates.length / 2)],
        max: rates[rates.length - 1],
      },
      delivered: per.reduce((n, p) => n + p.received, 0),
      lag: summarize(lag),
    };
  } finally {
    for (const s of subs) s.req.destroy();
  }
}

runJob(run);
