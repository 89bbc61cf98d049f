'use strict';
// Starting what the scenarios need: the API process, the agent fleet simulator, the ceiling
// server, and the forked load generators.
const fs = require('node:fs');
const path = require('node:path');
const mqtt = require('mqtt');
const { start, runForked } = require('./procs');
const { freePort } = require('./system');

const LOAD_DIR = path.join(__dirname, '..', 'load');

async function waitHttpOk(url, proc, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (!proc.running) throw new Error(`${proc.name} exited (${proc.exitCode}):\n${proc.tail(30)}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = err.message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${proc.name} not ready within ${timeoutMs} ms (${last}):\n${proc.tail(30)}`);
}

/** How often a start is retried when a port picked free was bound by another process first. */
const PORT_ATTEMPTS = 5;
const PORT_TAKEN = /EADDRINUSE|already in use/;

/**
 * Runs `attempt` (which picks free ports and starts a process) again when the process died
 * because one of its ports was taken between picking and binding.
 */
async function retryOnPortTaken(attempt) {
  for (let i = 1; ; i++) {
    const proc = await attempt().catch((err) => {
      if (i < PORT_ATTEMPTS && PORT_TAKEN.test(err.message)) return null;
      throw err;
    });
    if (proc) return proc;
  }
}

/**
 * Starts `node <dist>/apps/api/src/main.js`. mqttUrl unset = embedded aedes on a free port.
 * Ready when /health/ready answers 200 (database and broker up); at LOG_LEVEL=warn the
 * "listening" line is not printed, so the ports are picked here (and the start retried if one
 * was taken meanwhile).
 */
function startApi(ctx, { name = 'api', mqttUrl, cpuProfDir, logLevel } = {}) {
  return retryOnPortTaken(async () => {
    const port = await freePort();
    const mqttPort = await freePort();
    const clientId = `bench-cloud-${ctx.runId}-${++ctx.apiStarts}`;
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      PORT: String(port),
      MQTT_PORT: String(mqttPort),
      DATA_DIR: ctx.dataDir,
      DATABASE_URL: ctx.db.url,
      DATABASE_POOL_SIZE: String(ctx.opts.poolSize),
      LOG_LEVEL: logLevel ?? process.env.BENCH_API_LOG_LEVEL ?? 'warn',
      ADMIN_PASSWORD: ctx.adminPassword,
      JWT_SECRET: ctx.jwtSecret,
      MQTT_CLIENT_ID: clientId,
      NODE_ENV: 'production',
      RATE_LIMIT_PER_MINUTE: '0',
      // Every simulated agent connects from 127.0.0.1, 500 at a time: a fleet of that size behind
      // one address is an artefact of the harness, not the abuse the per-address cap is for.
      MQTT_MAX_UNAUTHENTICATED_PER_ADDRESS: '100000',
      // The webhook scenario's receiver listens on 127.0.0.1.
      WEBHOOK_ALLOW_PRIVATE: 'true',
    };
    if (mqttUrl) env.MQTT_URL = mqttUrl;
    // For experiments only (e.g. a -r preload); never set by the harness itself.
    if (process.env.BENCH_API_NODE_OPTIONS) env.NODE_OPTIONS = process.env.BENCH_API_NODE_OPTIONS;
    const args = [];
    if (cpuProfDir) args.push('--cpu-prof', `--cpu-prof-dir=${cpuProfDir}`);
    args.push(path.join(ctx.distDir, 'apps/api/src/main.js'));
    const proc = start(name, process.execPath, args, { env, echo: !!process.env.BENCH_ECHO });
    proc.url = `http://127.0.0.1:${port}`;
    proc.brokerUrl = mqttUrl ?? `mqtt://127.0.0.1:${mqttPort}`;
    proc.embeddedBroker = !mqttUrl;
    proc.mqttClientId = clientId;
    await waitHttpOk(`${proc.url}/health/ready`, proc, 120_000);
    return proc;
  });
}

/** Stops the API with SIGTERM (so --cpu-prof writes its profile); clears its MQTT session on an external broker. */
async function stopApi(api) {
  await api.stop('SIGTERM', 15_000);
  if (!api.embeddedBroker) await clearMqttSession(api.brokerUrl, api.mqttClientId);
}

/** The cloud client keeps a persistent session; on a shared broker it would outlive the run. */
async function clearMqttSession(brokerUrl, clientId) {
  const client = mqtt.connect(brokerUrl, { clientId, clean: true, reconnectPeriod: 0, connectTimeout: 5000 });
  await new Promise((resolve) => {
    const t = setTimeout(resolve, 5000);
    client.once('connect', () => {
      clearTimeout(t);
      resolve();
    });
    client.once('error', () => {
      clearTimeout(t);
      resolve();
    });
  });
  await client.endAsync().catch(() => undefined);
}

/** Writes the first `count` devices of `devices` as a credentials file for `vpn-agent simulate`. */
function credentialsFile(ctx, name, devices) {
  const file = path.join(ctx.workDir, `${name}.jsonl`);
  const text = devices
    .map((d) => JSON.stringify({ clientId: d.clientId, username: d.username, password: d.password }))
    .join('\n');
  fs.writeFileSync(file, `${text}\n`, { mode: 0o600 });
  return file;
}

/**
 * Runs `vpn-agent simulate` with these devices, answering commands at once (connect delay 0),
 * and resolves with its summary once every device has published BIRTH (or the wait ran out).
 */
async function startFleet(ctx, { name, brokerUrl, devices, batchSize = 500, readyTimeoutMs = 120_000 }) {
  const file = credentialsFile(ctx, name, devices);
  const args = [
    path.join(ctx.distDir, 'apps/vpn-agent/src/main.js'),
    'simulate',
    '--broker',
    brokerUrl,
    '--account',
    ctx.account.name,
    '--count',
    String(devices.length),
    '--credentials',
    file,
    '--connect-delay-ms',
    '0',
    '--batch-size',
    String(batchSize),
    '--batch-timeout-ms',
    '30000',
    '--ready-timeout-ms',
    String(Math.min(readyTimeoutMs, 60_000)),
    '--reconnect-jitter-ms',
    '2000',
    '--log-level',
    'info',
    '--agent-log-level',
    'warn',
  ];
  const proc = start(name, process.execPath, args, {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      ...(process.env.BENCH_AGENT_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_AGENT_NODE_OPTIONS } : {}),
    },
    echo: !!process.env.BENCH_ECHO,
  });
  const line = await proc.waitFor(/fleet (partly )?ready/, readyTimeoutMs + 30_000);
  proc.summary = JSON.parse(line);
  return proc;
}

/** Starts the bare node:http + pg ceiling server on a port the OS picks (read back from its output). */
async function startCeilingServer(ctx) {
  const proc = start(
    'ceiling-http',
    process.execPath,
    [path.join(__dirname, '..', 'ceilings/http-pg-server.js')],
    {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: '0',
        DATABASE_URL: ctx.db.url,
        SCOPE_ID: ctx.account.id,
        POOL_SIZE: String(ctx.opts.poolSize),
        NODE_ENV: 'production',
      },
    },
  );
  const line = await proc.waitFor(/ceiling listening on \d+/, 15_000);
  proc.url = `http://127.0.0.1:${/ceiling listening on (\d+)/.exec(line)[1]}`;
  return proc;
}

/** One autocannon run (warm-up, then measured) from a separate process. */
async function httpLoad(ctx, name, job) {
  const limit = job.warmupMs + job.durationMs + 30_000;
  const { result } = runForked(
    name,
    path.join(LOAD_DIR, 'http-load.js'),
    { ...job, hardLimitMs: limit },
    { timeoutMs: limit + 5000 },
  );
  return result;
}

/** The raw MQTT request/reply ceiling: a responder process and a requester process. */
async function mqttPingPong(ctx, { brokerUrl, requester, responder, concurrency, warmupMs, durationMs }) {
  const limit = warmupMs + durationMs + 60_000;
  const base = { distDir: ctx.distDir, brokerUrl, account: ctx.account.name, hardLimitMs: limit };
  let readyResolve;
  const ready = new Promise((r) => (readyResolve = r));
  const resp = runForked(
    'pingpong-responder',
    path.join(LOAD_DIR, 'mqtt-pingpong.js'),
    { ...base, role: 'responder', self: responder, peer: requester },
    { timeoutMs: limit + 5000, onMessage: (m) => m.type === 'ready' && readyResolve() },
  );
  await Promise.race([ready, resp.result]);
  try {
    const req = runForked(
      'pingpong-requester',
      path.join(LOAD_DIR, 'mqtt-pingpong.js'),
      {
        ...base,
        role: 'requester',
        self: requester,
        peer: responder,
        concurrency,
        warmupMs,
        durationMs,
        maxRequests: ctx.opts.maxRequests,
      },
      { timeoutMs: limit + 5000 },
    );
    return await req.result;
  } finally {
    resp.proc.child.send({ type: 'stop' });
    await resp.result.catch(() => undefined);
  }
}

module.exports = {
  startApi,
  stopApi,
  startFleet,
  startCeilingServer,
  httpLoad,
  mqttPingPong,
  credentialsFile,
  LOAD_DIR,
};
