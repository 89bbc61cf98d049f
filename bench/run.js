#!/usr/bin/env node
'use strict';
// The benchmark harness: `npm run bench` (full) or `npm run bench:quick` (smoke run, < 1 min).
// It compiles the app into a private folder, creates a fresh database, starts the API (embedded
// broker), creates an account, a user and the devices through the REST API, then runs each
// scenario (bench/scenarios/*.js) against its ceiling, and writes bench/results/*.json and (full
// mode) BENCHMARKS.md. It exits non-zero only when the harness itself breaks (a scenario throws),
// never because a target was missed. Everything runs on 127.0.0.1; every child process is stopped
// at the end, also on Ctrl-C.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { Pool } = require('pg');

const procs = require('./lib/procs');
const { buildApp, ROOT } = require('./lib/build');
const { postgresServer, createDatabase } = require('./lib/pg');
const { startApi, stopApi } = require('./lib/stack');
const { startBenchMosquitto } = require('./lib/mosquitto');
const { Api, provisionDevices } = require('./lib/api');
const { machine, tcpReachable, pidListeningOn } = require('./lib/system');
const report = require('./lib/report');

const SCENARIOS = [
  'command-rtt',
  'status-ingest',
  'status-read',
  'fleet-list',
  'fleet-status',
  'sse-fanout',
  'webhook-delivery',
  'fleet-embedded',
  'fleet-mosquitto',
  'gateway-sync',
  'tunnel-connect',
];

const FULL = {
  devices: 10_000,
  poolSize: 20,
  warmupMs: 3000,
  durationMs: 10_000,
  rounds: 2,
  maxRequests: 2_000_000,
  commandDevices: 1000,
  fleetDevices: 10_000,
  fleetBatch: 500,
  settleMs: 3000,
  ingest: {
    devices: 2000,
    rates: [500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 8000, 10_000, 12_000],
    stepMs: 4000,
    drainMs: 2000,
    ceilingMs: 5000,
  },
  gateway: { peers: 10_000, changes: 200 },
  tunnel: { rounds: 20, devices: 4, peers: 10_000 },
  sse: { subscribers: 50, devices: 1000, rate: 1000, durationMs: 10_000 },
  webhook: { events: 2000, devices: 1000, rate: 2000 },
};

const QUICK = {
  devices: 200,
  poolSize: 20,
  warmupMs: 300,
  durationMs: 1000,
  rounds: 1,
  maxRequests: 200_000,
  commandDevices: 50,
  fleetDevices: 200,
  fleetBatch: 200,
  settleMs: 500,
  ingest: { devices: 50, rates: [200, 500], stepMs: 1000, drainMs: 2000, ceilingMs: 800 },
  gateway: { peers: 1000, changes: 50 },
  tunnel: { rounds: 3, devices: 2, peers: 500 },
  sse: { subscribers: 10, devices: 50, rate: 200, durationMs: 1500 },
  webhook: { events: 200, devices: 50, rate: 400 },
};

const USAGE = `usage: node bench/run.js [--quick] [--only ids] [--skip ids] [--cpu-prof] [--keep-db] [--duration s]
  --quick        tiny counts, < 1 min: a smoke test of the harness (writes bench/results/quick.json)
  --only a,b     run only these scenarios (${SCENARIOS.join(', ')})
  --skip a,b     skip these scenarios
  --cpu-prof     run the API with --cpu-prof; profiles go to .tmp/bench-profiles/
  --keep-db      do not drop the bench database at the end
  --duration s   measured seconds per HTTP load run (e.g. a quick run long enough to profile)
  --markdown     write BENCHMARKS.md even in quick mode or with --only
env: BENCH_PG_ADMIN_URL, BENCH_MOSQUITTO_URL (default: a private mosquitto, else 127.0.0.1:1883), BENCH_DIST_DIR (prebuilt app), BENCH_DB_POOL, BENCH_ECHO=1`;

function parseArgs(argv) {
  const a = {
    quick: false,
    only: null,
    skip: [],
    cpuProf: false,
    keepDb: false,
    markdown: false,
    durationS: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const list = () => (argv[++i] ?? '').split(',').filter(Boolean);
    if (arg === '--quick') a.quick = true;
    else if (arg === '--only') a.only = list();
    else if (arg === '--skip') a.skip = list();
    else if (arg === '--cpu-prof') a.cpuProf = true;
    else if (arg === '--keep-db') a.keepDb = true;
    else if (arg === '--markdown') a.markdown = true;
    else if (arg === '--duration') a.durationS = Number(argv[++i]);
    else if (arg === '--help' || arg === '-h') {
      console.log(USAGE);
      process.exit(0);
    } else {
      console.error(`unknown option ${arg}\n${USAGE}`);
      process.exit(2);
    }
  }
  for (const id of [...(a.only ?? []), ...a.skip]) {
    if (!SCENARIOS.includes(id)) {
      console.error(`unknown scenario ${id}; known: ${SCENARIOS.join(', ')}`);
      process.exit(2);
    }
  }
  return a;
}

function git() {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    return { commit, dirty };
  } catch {
    return null;
  }
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_r, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

async function setUp(ctx) {
  const admin = await new Api(ctx.api.url).login('admin', ctx.adminPassword);
  // The smallest subnet that holds every bench device (the API allocates tunnel addresses by
  // scanning the subnet, so a needlessly large one only slows device creation down).
  const needed = ctx.opts.devices + 2 + 3;
  const prefix = 32 - Math.max(8, Math.ceil(Math.log2(needed)));
  const account = await admin.call('POST', '/v1/_/accounts', {
    name: `bench-${ctx.runId}`,
    description: 'benchmark account',
    vpnSubnet: `10.100.0.0/${prefix}`,
  });
  ctx.account = { id: account.id, name: account.name };
  const password = randomBytes(18).toString('base64url');
  const username = `bench-${ctx.runId}`;
  await admin.call('POST', `/v1/${account.id}/users`, { username, password, role: 'admin' });
  const user = await new Api(ctx.api.url).login(username, password);
  ctx.token = user.token;
  const ids = Array.from(
    { length: ctx.opts.devices },
    (_v, i) => `b${ctx.runId}-${String(i).padStart(5, '0')}`,
  );
  const started = Date.now();
  let lastLog = started;
  const all = await provisionDevices(
    user,
    [...ids, `b${ctx.runId}-pp-req`, `b${ctx.runId}-pp-resp`],
    20,
    (n) => {
      if (Date.now() - lastLog > 5000) {
        lastLog = Date.now();
        ctx.log(`  provisioned ${n} devices`);
      }
    },
  );
  const secs = (Date.now() - started) / 1000;
  ctx.devices = all.slice(0, ids.length);
  ctx.pingPongDevices = all.slice(ids.length);
  ctx.provisioning = {
    devices: all.length,
    seconds: Math.round(secs * 10) / 10,
    perSecond: Math.round(all.length / secs),
  };
  ctx.log(
    `provisioned ${all.length} devices through REST in ${secs.toFixed(1)} s (${ctx.provisioning.perSecond}/s)`,
  );
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  procs.installSignalHandlers();
  const t0 = Date.now();
  const log = (msg) =>
    process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
  const opts = structuredClone(args.quick ? QUICK : FULL);
  if (process.env.BENCH_DB_POOL) opts.poolSize = Number(process.env.BENCH_DB_POOL);
  if (args.durationS > 0) opts.durationMs = args.durationS * 1000;
  opts.mosquittoUrl = process.env.BENCH_MOSQUITTO_URL ?? 'mqtt://127.0.0.1:1883';
  const selected = SCENARIOS.filter(
    (id) => (args.only ? args.only.includes(id) : true) && !args.skip.includes(id),
  );
  const startedAt = new Date().toISOString();
  const machineAtStart = machine();

  const runId = randomBytes(3).toString('hex');
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpncloud-bench-'));
  procs.onCleanup(() => fs.rmSync(workDir, { recursive: true, force: true }));
  const ctx = {
    runId,
    opts,
    log,
    workDir,
    dataDir: path.join(workDir, 'data'),
    adminPassword: randomBytes(18).toString('base64url'),
    jwtSecret: randomBytes(32).toString('hex'),
    apiStarts: 0,
  };
  log(`mode ${args.quick ? 'quick' : 'full'}, scenarios: ${selected.join(', ')}`);
  ctx.distDir = await buildApp(log);

  const pg = await postgresServer(ctx.distDir, log);
  procs.onCleanup(() => pg.stop());
  ctx.db = await createDatabase(pg.adminUrl);
  log(`database ${ctx.db.name} on the ${pg.server} PostgreSQL`);
  if (!args.keepDb) procs.onCleanup(() => ctx.db.drop());
  const pool = new Pool({ connectionString: ctx.db.url, max: 2 });
  procs.onCleanup(() => pool.end());
  ctx.sql = (text, params) => pool.query(text, params);

  if (!process.env.BENCH_MOSQUITTO_URL && selected.includes('fleet-mosquitto')) {
    const own = await startBenchMosquitto(workDir, log);
    if (own) {
      opts.mosquittoUrl = own.url;
      opts.mosquittoOwn = true;
    }
  }
  const mq = new URL(opts.mosquittoUrl);
  if (await tcpReachable(mq.hostname, Number(mq.port || 1883))) {
    ctx.mosquitto = { url: opts.mosquittoUrl, pid: pidListeningOn(Number(mq.port || 1883), 'mosquitto') };
  }

  const cpuProfDir = args.cpuProf ? path.join(ROOT, '.tmp', 'bench-profiles', `${runId}`) : undefined;
  const ensureApi = async () => {
    if (ctx.api?.running) return;
    ctx.api = await startApi(ctx, { cpuProfDir });
  };
  await ensureApi();
  procs.onCleanup(() => ctx.api && stopApi(ctx.api));
  log(`API up at ${ctx.api.url}, embedded broker at ${ctx.api.brokerUrl}`);
  await withTimeout(setUp(ctx), 900_000, 'set-up');

  const scenarios = [];
  let failures = 0;
  for (const id of selected) {
    const scenario = require(`./scenarios/${id}`);
    const started = Date.now();
    const reason = (await scenario.skip?.(ctx)) ?? null;
    if (reason) {
      log(`${id}: skipped (${reason})`);
      scenarios.push({ id, title: scenario.title, status: 'skipped', reason });
      continue;
    }
    log(`${id}: running`);
    try {
      await ensureApi();
      const r = await withTimeout(scenario.run(ctx), scenario.timeoutMs(ctx), id);
      const seconds = Math.round((Date.now() - started) / 100) / 10;
      scenarios.push({ id, title: scenario.title, status: 'ok', seconds, rows: r.rows, details: r.details });
      for (const row of r.rows) {
        log(
          `${id}: ${row.scenario}: ours ${row.ours} ${row.unit}, ceiling ${row.ceiling ?? '—'}, ratio ` +
            `${row.ratio ?? '—'}, p50/p99 ${row.oursLatency ? `${row.oursLatency.p50Ms}/${row.oursLatency.p99Ms} ms` : '—'}, ` +
            `target ${row.met === true ? 'met' : row.met === false ? 'MISSED' : 'n/a'}`,
        );
      }
    } catch (err) {
      failures++;
      log(`${id}: HARNESS ERROR: ${err.stack ?? err}`);
      scenarios.push({ id, title: scenario.title, status: 'error', error: String(err.stack ?? err) });
      // A broken scenario may leave the API in any state: the next one gets a fresh one.
      if (ctx.api?.running) await stopApi(ctx.api).catch(() => undefined);
      ctx.api = null;
    }
  }

  const pgVersion = (await ctx.sql('SHOW server_version')).rows[0].server_version;
  const machineEnd = machine();
  const busy =
    Math.max(machineAtStart.loadAverage[0], machineEnd.loadAverage[0]) > machineAtStart.nproc * 0.5;
  const results = {
    schema: 1,
    mode: args.quick ? 'quick' : 'full',
    startedAt,
    finishedAt: new Date().toISOString(),
    durationS: Math.round((Date.now() - t0) / 1000),
    git: git(),
    machine: machineAtStart,
    loadAverageEnd: machineEnd.loadAverage,
    sharedNote: busy
      ? `probably: 1-min load average ${machineAtStart.loadAverage[0]} at start, ${machineEnd.loadAverage[0]} at end, on ${machineAtStart.nproc} CPUs, before/after the bench's own load`
      : 'no other load seen at start or end',
    postgres: { version: pgVersion, server: pg.server },
    mosquitto: ctx.mosquitto ? `${ctx.mosquitto.url} (pid ${ctx.mosquitto.pid ?? 'unknown'})` : null,
    settings: { ...opts, devices: opts.devices },
    provisioning: ctx.provisioning,
    scenarioIds: SCENARIOS,
    scenarios,
    summary: {
      harnessErrors: failures,
      targetsMet: scenarios
        .flatMap((s) => s.rows ?? [])
        .filter((r) => r.met === true)
        .map((r) => r.scenario),
      targetsMissed: scenarios
        .flatMap((s) => s.rows ?? [])
        .filter((r) => r.met === false)
        .map((r) => r.scenario),
    },
  };
  const partial = args.quick || args.only || args.skip.length > 0;
  const jsonFile = path.join(
    __dirname,
    'results',
    partial ? (args.quick ? 'quick.json' : 'partial.json') : 'latest.json',
  );
  report.writeJson(jsonFile, results);
  log(`results: ${path.relative(process.cwd(), jsonFile)}`);
  if (!partial || args.markdown) {
    const mdFile = path.join(ROOT, 'BENCHMARKS.md');
    const previous = fs.existsSync(mdFile) ? fs.readFileSync(mdFile, 'utf8') : null;
    fs.writeFileSync(mdFile, report.markdown(results, previous));
    log(`table: ${path.relative(process.cwd(), mdFile)}`);
  }
  process.stdout.write(`\n${report.table(results)}\n\n`);
  if (cpuProfDir) log(`API CPU profiles (written when the API stops): ${cpuProfDir}`);
  return failures;
}

main()
  .then(async (failures) => {
    await procs.cleanupAll();
    process.exit(failures > 0 ? 1 : 0);
  })
  .catch(async (err) => {
    process.stderr.write(`bench: ${err.stack ?? err}\n`);
    await procs.cleanupAll();
    process.exit(1);
  });
