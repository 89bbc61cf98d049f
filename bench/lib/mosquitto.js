'use strict';
// The bench's own Mosquitto (when BENCH_MOSQUITTO_URL is not set and `mosquitto` is installed):
// configured as docs/brokers.md recommends for production, on a free loopback port, stopped at the
// end. Anonymous, since the bench's API uses it as an `external-open` broker. `set_tcp_nodelay true`
// matters: with Mosquitto's default, one request/reply at a time takes ~44 ms (Nagle's algorithm
// against delayed ACKs) instead of ~0.3 ms.
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { start, onCleanup } = require('./procs');
const { freePort } = require('./system');

function installed() {
  try {
    execFileSync('mosquitto', ['-h'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // `mosquitto -h` exits non-zero after printing its usage; only a missing binary is ENOENT.
    return err.code !== 'ENOENT';
  }
}

/** { url, proc } or null when mosquitto is not installed. */
async function startBenchMosquitto(workDir, log) {
  if (!installed()) return null;
  for (let attempt = 1; attempt <= 5; attempt++) {
    const port = await freePort();
    const conf = path.join(workDir, `mosquitto-${port}.conf`);
    fs.writeFileSync(
      conf,
      [
        'per_listener_settings false',
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        'set_tcp_nodelay true',
        'max_queued_messages 100000',
        ...(process.getuid?.() === 0 ? ['user root'] : []),
        'log_type error',
        'log_type warning',
        'log_type information',
        'log_dest stderr',
        '',
      ].join('\n'),
    );
    const proc = start('mosquitto', 'mosquitto', ['-c', conf], { echo: !!process.env.BENCH_ECHO });
    onCleanup(() => proc.stop('SIGTERM', 5000));
    try {
      await proc.waitFor(/running|Address already in use/, 10_000);
    } catch (err) {
      throw new Error(`the bench's mosquitto did not start: ${err.message}`);
    }
    if (proc.lines.some((l) => /Address already in use/.test(l))) {
      await proc.stop('SIGTERM', 5000);
      continue;
    }
    log(`mosquitto ${port} started for the bench (set_tcp_nodelay true)`);
    return { url: `mqtt://127.0.0.1:${port}`, proc };
  }
  throw new Error("the bench's mosquitto found no free port in 5 attempts");
}

module.exports = { startBenchMosquitto };
