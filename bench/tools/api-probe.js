'use strict';
// Two uses:
// 1. A --require hook for the API under a bench run:
//      BENCH_API_NODE_OPTIONS="--require $PWD/bench/tools/api-probe.js" node bench/run.js --quick --only command-rtt
//    Every second it appends one JSON line to $TMPDIR/api-probe.<pid>.jsonl: the POST requests
//    answered in that second, the process's user and system CPU, and the socket writes (calls,
//    chunks, bytes) by peer: Postgres (DATABASE_URL's port), HTTP (PORT), the embedded broker's
//    writes to its clients (MQTT_PORT, local side) and the cloud client's writes to a broker
//    (MQTT_PORT or MQTT_URL's port, remote side).
// 2. A summary of such a file:
//      node bench/tools/api-probe.js /tmp/api-probe.<pid>.jsonl [--min-posts N]
//    prints each second with at least N (default 1) answers, its CPU per answer, and the writes
//    per answer of each peer kind over those seconds.
// The hook only observes: it wraps net.Socket's _write/_writev and counts; measurement only.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

function portOf(url, fallback) {
  try {
    return url ? String(new URL(url).port || fallback) : null;
  } catch {
    return null;
  }
}

function hook() {
  const net = require('node:net');
  const http = require('node:http');
  const pgPort = portOf(process.env.DATABASE_URL, 5432);
  const httpPort = process.env.PORT ?? null;
  const mqttPort = portOf(process.env.MQTT_URL, 1883) ?? process.env.MQTT_PORT ?? null;
  const kind = (s) => {
    const local = String(s.localPort);
    const remote = String(s.remotePort);
    if (remote === pgPort) return 'postgres';
    if (local === httpPort) return 'http';
    if (local === mqttPort) return 'broker-to-clients';
    if (remote === mqttPort) return 'cloud-client';
    return 'other';
  };
  let writes = {};
  const tally = (socket, chunks, bytes) => {
    const k = kind(socket);
    const w = (writes[k] ??= { calls: 0, chunks: 0, bytes: 0 });
    w.calls++;
    w.chunks += chunks;
    w.bytes += bytes;
  };
  const write = net.Socket.prototype._write;
  net.Socket.prototype._write = function (data, encoding, cb) {
    tally(this, 1, data?.length ?? 0);
    return write.call(this, data, encoding, cb);
  };
  const writev = net.Socket.prototype._writev;
  net.Socket.prototype._writev = function (chunks, cb) {
    tally(
      this,
      chunks.length,
      chunks.reduce((n, c) => n + (c.chunk?.length ?? 0), 0),
    );
    return writev.call(this, chunks, cb);
  };
  let posts = 0;
  const emit = http.Server.prototype.emit;
  http.Server.prototype.emit = function (event, req, res) {
    if (event === 'request' && req.method === 'POST') res.once('finish', () => posts++);
    return emit.apply(this, arguments);
  };
  const out = path.join(os.tmpdir(), `api-probe.${process.pid}.jsonl`);
  process.stderr.write(`api-probe: writing ${out}\n`);
  let cpu = process.cpuUsage();
  setInterval(() => {
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    const line = {
      t: new Date().toISOString(),
      posts,
      userMs: used.user / 1e3,
      sysMs: used.system / 1e3,
      writes,
    };
    posts = 0;
    writes = {};
    fs.appendFileSync(out, JSON.stringify(line) + '\n');
  }, 1000).unref();
}

function summary(file, minPosts) {
  const lines = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((l) => l.posts >= minPosts);
  if (lines.length === 0) {
    console.log(`no second with at least ${minPosts} answers`);
    return;
  }
  const total = { posts: 0, userMs: 0, sysMs: 0, writes: {} };
  for (const l of lines) {
    const cpu = (l.userMs + l.sysMs) / l.posts;
    console.log(
      `${l.t.slice(11, 19)}  ${String(l.posts).padStart(5)} answers  CPU ${cpu.toFixed(2)} ms/answer (system ${(l.sysMs / l.posts).toFixed(2)})`,
    );
    total.posts += l.posts;
    total.userMs += l.userMs;
    total.sysMs += l.sysMs;
    for (const [k, w] of Object.entries(l.writes)) {
      const t = (total.writes[k] ??= { calls: 0, bytes: 0 });
      t.calls += w.calls;
      t.bytes += w.bytes;
    }
  }
  console.log(
    `\n${lines.length} s, ${total.posts} answers: CPU ${((total.userMs + total.sysMs) / total.posts).toFixed(3)} ms/answer ` +
      `(user ${(total.userMs / total.posts).toFixed(3)}, system ${(total.sysMs / total.posts).toFixed(3)})`,
  );
  console.log('socket writes per answer:');
  for (const [k, w] of Object.entries(total.writes).sort((a, b) => b[1].calls - a[1].calls)) {
    console.log(
      `  ${k.padEnd(18)} ${(w.calls / total.posts).toFixed(2)} writes, ${Math.round(w.bytes / total.posts)} bytes`,
    );
  }
}

if (require.main === module) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--min-posts');
  const minPosts = i >= 0 ? Number(args.splice(i, 2)[1]) : 1;
  if (!args[0]) {
    console.error('usage: node bench/tools/api-probe.js FILE.jsonl [--min-posts N]');
    process.exit(2);
  }
  summary(args[0], minPosts);
} else {
  hook();
}
