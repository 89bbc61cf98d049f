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

/**
 * Starts `node <dist>/apps/api/src/main.js`. mqttUrl unset = embedded aedes on a free port.
 * Ready when /health/ready answers 200 (database and broker up); at LOG_LEVEL=warn the
 * "listening" line is not printed.
 */
async function startApi(ctx, { name = 'api', mqttUrl, cpuProfDir } = {}) {
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
    LOG_LEVEL: process.env.BENCH_API_LOG_LEVEL ?? 'warn',
    ADMIN_PASSWORD: ctx.adminPassword,
    JWT_SECRET: ctx.jwtSecret,
    MQTT_CLIENT_ID: clientId,
    NODE_ENV: 'production',
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

/** Starts the bare node:http + pg ceiling server. */
async function startCeilingServer(ctx) {
  const port = await freePort();
  const proc = start(
    'ceiling-http',
    process.execPath,
    [path.join(__dirname, '..', 'ceilings/http-pg-server.js')],
    {
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        DATABASE_URL: ctx.db.url,
        SCOPE_ID: ctx.account.id,
        POOL_SIZE: String(ctx.opts.poolSize),
        NODE_ENV: 'production',
      },
    },
  );
  await proc.waitFor('ceiling listening', 15_000);
  proc.url = `http://127.0.0.1:${port}`;
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
