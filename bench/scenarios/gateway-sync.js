'use strict';
// VPN gateway at scale: the real gateway process (compiled app) with its wireguard-go interface in a
// network namespace of its own, driven by a fake cloud over an aedes broker in this process.
//  - full sync of N peers (10,000 in full mode: 20 chunks of 500, each reply awaited), against the
//    same peers written straight to a scratch wireguard-go interface over UAPI in chunks of 500;
//  - one change at a time while N peers exist (apply → reply, alternately a new client peer paired
//    with a device and its removal), against a raw single-peer UAPI `set` on the same interface.
// Needs root, wireguard-go, wg, ip, nft, sysctl. Traffic stays on 127.0.0.1 and in the namespace;
// the namespace, interfaces and processes are removed at the end, also on Ctrl-C.
// Standalone: `node bench/scenarios/gateway-sync.js [--quick]` (no API or database needed).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const { randomBytes, randomUUID } = require('node:crypto');
const { execFile } = require('node:child_process');
const { createBroker } = require('aedes');
const mqtt = require('mqtt');

const procs = require('../lib/procs');
const { histogram, summarize } = require('../lib/stats');
const { ratio, latencyPair } = require('../lib/measure');
const { rssKiB } = require('../lib/system');

const TOOLS = ['wireguard-go', 'wg', 'ip', 'nft', 'sysctl'];
const CHUNK = 500;
/** Every CLIENT_EVERY-th peer is an engineer's client allowed to the PAIRED devices before it. */
const CLIENT_EVERY = 100;
const PAIRED = 20;
const DEFAULTS = { full: { peers: 10_000, changes: 200 }, quick: { peers: 1000, changes: 50 } };

function sh(file, args, input) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.LOG_LEVEL; // a daemonising wireguard-go would keep our pipes open with it
    const child = execFile(
      file,
      args,
      { env, timeout: 60_000, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${file} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout),
    );
    child.stdin.on('error', () => undefined); // the tool may exit before reading its input
    child.stdin.end(input ?? '');
  });
}

const inNs = (ns, file, args, input) => sh('ip', ['netns', 'exec', ns, file, ...args], input);

function onPath(tool) {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir, tool), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

async function skip() {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, wireguard-go, nftables)';
  const missing = TOOLS.filter((t) => !onPath(t));
  if (missing.length > 0) {
    return `missing ${missing.join(', ')} (apt-get install wireguard-go wireguard-tools iproute2 nftables procps)`;
  }
  return null;
}

function wireguardGoPid(ifname) {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[0].endsWith('wireguard-go') && argv[1] === ifname) return Number(entry);
    } catch {
      /* gone */
    }
  }
  return null;
}

async function until(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Deletes an interface and makes sure its wireguard-go (found by its unique name) is gone. */
async function removeInterface(ns, ifname) {
  await inNs(ns, 'ip', ['link', 'del', 'dev', ifname]).catch(() => undefined);
  await until(`${ifname}'s wireguard-go to exit`, () => wireguardGoPid(ifname) === null, 5000).catch(() => {
    const pid = wireguardGoPid(ifname);
    if (pid !== null) process.kill(pid, 'SIGKILL');
  });
  fs.rmSync(`/var/run/wireguard/${ifname}.sock`, { force: true });
}

function startBroker() {
  const broker = createBroker();
  const server = net.createServer({ noDelay: true }, (socket) => broker.handle(socket));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `mqtt://127.0.0.1:${server.address().port}`,
        close: () =>
          new Promise((r) => {
            server.close();
            broker.close(() => r());
          }),
      }),
    );
  });
}

/** The peers of the bench: devices of N/1000 accounts, and every 100th peer a client paired with 20 devices. */
function makePeers(n) {
  const accounts = Array.from({ length: Math.max(1, Math.ceil(n / 1000)) }, () => randomUUID());
  const peers = [];
  for (let i = 0; i < n; i++) {
    const host = i + 2; // 100.64.0.1 is the gateway
    const client = i % CLIENT_EVERY === CLIENT_EVERY - 1;
    peers.push({
      publicKey: randomBytes(32).toString('base64'),
      allowedIps: [`100.64.${host >> 8}.${host & 255}/32`],
      kind: client ? 'client' : 'device',
      accountId: accounts[Math.floor(i / 1000)],
      allow: client ? peers.slice(Math.max(0, i - PAIRED), i).map((p) => p.publicKey) : [],
    });
  }
  return peers;
}

async function run(ctx) {
  const sizes = ctx.opts.gateway ?? DEFAULTS.full;
  const proto = require(path.join(ctx.distDir, 'libs/protocol/src'));
  const edge = require(path.join(ctx.distDir, 'libs/edge/src'));
  const main = path.join(ctx.distDir, 'apps/vpn-gateway/src/main.js');
  if (!fs.existsSync(main)) throw new Error(`${main} was not built`);

  const sfx = randomBytes(3).toString('hex');
  const ns = `bgw-${sfx}`;
  const gwIf = `bgw${sfx}`;
  const scratchIf = `bgs${sfx}`;
  const account = `bench-gw-${sfx}`;
  const gwId = `gateway-${sfx}`;
  const cloudId = `cloud-${sfx}`;
  const stateDir = fs.mkdtempSync(path.join(ctx.workDir ?? os.tmpdir(), 'gateway-'));
  const cleanups = [];
  // One clean-up, however many callers (the scenario's end and the harness's Ctrl-C hook race):
  // each waits for the same run, so nobody exits while namespaces are still being removed.
  let cleaning = null;
  const cleanup = () =>
    (cleaning ??= (async () => {
      for (const fn of cleanups.splice(0).reverse()) await fn().catch(() => undefined);
    })());
  procs.onCleanup(cleanup);

  try {
    await sh('ip', ['netns', 'add', ns]);
    cleanups.push(() => sh('ip', ['netns', 'del', ns]));
    cleanups.push(async () => fs.rmSync(stateDir, { recursive: true, force: true }));
    await inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
    const broker = await startBroker();
    cleanups.push(() => broker.close());

    const cloud = await mqtt.connectAsync(broker.url, { clientId: cloudId, protocolVersion: 4, clean: true });
    cleanups.push(() => cloud.endAsync(true));
    cloud.stream.setNoDelay?.(true);
    const waiting = new Map();
    let births = 0;
    cloud.on('message', (topic, bytes) => {
      const parsed = proto.parseTopic(topic);
      if (parsed?.kind === 'birth') births++;
      if (parsed?.kind !== 'reply') return;
      const done = waiting.get(parsed.requestId);
      if (done) done(proto.readGatewayReply(proto.decodeKuraPayload(bytes)));
    });
    await cloud.subscribeAsync(
      [`$EDC/${account}/${cloudId}/${proto.GATEWAY_APP_ID}/REPLY/+`, proto.Topics.birth(account, gwId)],
      {
        qos: 1,
      },
    );
    const request = (command, body) => {
      const requestId = randomUUID();
      const reply = new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(requestId);
          reject(new Error(`no reply to ${command} within 120 s`));
        }, 120_000);
        waiting.set(requestId, (r) => {
          clearTimeout(timer);
          waiting.delete(requestId);
          resolve(r);
        });
      });
      const payload = proto.encodeKuraPayload(
        proto.buildCommandRequest({ requestId, requesterClientId: cloudId, body }),
      );
      cloud.publish(proto.Topics.gatewayCommand(account, gwId, command), payload, { qos: 1 });
      return reply;
    };

    const gateway = procs.start(
      'vpn-gateway',
      process.execPath,
      [
        main,
        '--broker',
        broker.url,
        '--account',
        account,
        '--client-id',
        gwId,
        '--listen-port',
        '51820',
        '--interface',
        gwIf,
        '--netns',
        ns,
        '--state-dir',
        stateDir,
        '--log-level',
        'info',
      ],
      { echo: !!process.env.BENCH_ECHO },
    );
    // A clean stop removes the interface and the firewall table; the rest makes sure of it.
    cleanups.push(() => removeInterface(ns, gwIf));
    cleanups.push(() => gateway.stop('SIGTERM', 15_000));
    await gateway.waitFor('"gateway ready"', 60_000);
    await until('BIRTH at the cloud', () => births > 0, 10_000);

    // --- full sync -----------------------------------------------------------------------
    const addresses = ['100.64.0.1/16'];
    const peers = makePeers(sizes.peers);
    const chunks = Math.ceil(peers.length / CHUNK);
    const bodies = Array.from({ length: chunks }, (_v, c) =>
      proto.encodeGatewaySync({
        serial: 1,
        chunk: c,
        last: c === chunks - 1,
        addresses,
        peers: peers.slice(c * CHUNK, (c + 1) * CHUNK),
      }),
    );
    ctx.log(`  full sync of ${peers.length} peers in ${chunks} chunks`);
    const syncStarted = performance.now();
    for (let c = 0; c < chunks; c++) {
      const reply = await request('sync', bodies[c]);
      if (reply?.code !== 200) throw new Error(`sync chunk ${c}: ${JSON.stringify(reply)}`);
    }
    const syncMs = performance.now() - syncStarted;
    const uapi = new edge.WireguardUapi(edge.uapiSocketPath(gwIf), 30_000);
    const held = await uapi.get();
    if (held.peers.length !== peers.length)
      throw new Error(`interface holds ${held.peers.length} peers, not ${peers.length}`);
    const setText = await inNs(ns, 'nft', ['list', 'set', 'inet', `vpngw_${gwIf}`, 'pairs']);
    const elements = (setText.match(/\d+\.\d+\.\d+\.\d+ \. \d+\.\d+\.\d+\.\d+/g) ?? []).length;
    const expectedElements = Math.floor(peers.length / CLIENT_EVERY) * PAIRED * 2;
    if (elements !== expectedElements)
      throw new Error(`firewall holds ${elements} pair elements, not ${expectedElements}`);

    // Ceiling: the same peers written straight to a scratch interface, chunk by chunk.
    await inNs(ns, 'wireguard-go', [scratchIf]);
    cleanups.push(() => removeInterface(ns, scratchIf));
    const scratch = new edge.WireguardUapi(edge.uapiSocketPath(scratchIf), 30_000);
    await until(
      'the scratch interface',
      () =>
        scratch.get().then(
          () => true,
          () => false,
        ),
      5000,
    );
    const ceilingStarted = performance.now();
    for (let c = 0; c < chunks; c++) {
      const lines = [];
      for (const p of peers.slice(c * CHUNK, (c + 1) * CHUNK)) {
        lines.push(
          `public_key=${edge.keyToHex(p.publicKey)}`,
          'replace_allowed_ips=true',
          `allowed_ip=${p.allowedIps[0]}`,
        );
      }
      await scratch.set(lines);
    }
    const syncCeilingMs = performance.now() - ceilingStarted;
    await removeInterface(ns, scratchIf);

    // --- one change at a time ---------------------------------------------------------------
    let serial = 1;
    const ours = histogram();
    let errors = 0;
    const devices = peers.filter((p) => p.kind === 'device');
    let added = null;
    const changesStarted = performance.now();
    for (let i = 0; i < sizes.changes; i++) {
      const change = { serial: serial + 1, previous: serial, addresses, upsert: [], remove: [] };
      if (added === null) {
        const host = 60_000 + i; // 100.64.234.x: outside the synced peers
        added = {
          publicKey: randomBytes(32).toString('base64'),
          allowedIps: [`100.64.${host >> 8}.${host & 255}/32`],
          kind: 'client',
          accountId: devices[i % devices.length].accountId,
          allow: [devices[(i * 37) % devices.length].publicKey],
        };
        change.upsert.push(added);
      } else {
        change.remove.push(added.publicKey);
        added = null;
      }
      const body = proto.encodeGatewayApply(change);
      const t0 = performance.now();
      const reply = await request('apply', body);
      ours.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
      if (reply?.code === 200) serial++;
      else {
        errors++;
        if (errors > sizes.changes / 2) throw new Error(`change sets fail: ${JSON.stringify(reply)}`);
      }
    }
    const changesMs = performance.now() - changesStarted;

    // Ceiling: a single-peer UAPI set on the same interface, 10,000 peers present.
    const ceiling = histogram();
    const ceilingStartedAt = performance.now();
    for (let i = 0; i < sizes.changes; i++) {
      const hex = randomBytes(32).toString('hex');
      const t0 = performance.now();
      await uapi.set([`public_key=${hex}`, 'replace_allowed_ips=true', `allowed_ip=100.65.0.${i % 250}/32`]);
      ceiling.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
      await uapi.set([`public_key=${hex}`, 'remove=true']);
    }
    const ceilingMs = performance.now() - ceilingStartedAt;

    // What a statistics poll costs at this size (wireguard-go lists every peer).
    const polls = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await uapi.get();
      polls.push(performance.now() - t0);
    }
    polls.sort((a, b) => a - b);
    const memory = { gatewayKiB: rssKiB(gateway.pid), wireguardGoKiB: rssKiB(wireguardGoPid(gwIf)) };

    const stopCode = await gateway.stop('SIGTERM', 15_000);
    const removed = await inNs(ns, 'ip', ['link', 'show', 'dev', gwIf]).then(
      () => false,
      () => true,
    );
    if (stopCode !== 0 || !removed)
      throw new Error(`gateway stop: exit ${stopCode}, interface removed: ${removed}`);

    const oursSummary = summarize(ours);
    const ceilingSummary = summarize(ceiling);
    const oursRate = Math.round((sizes.changes / changesMs) * 1000);
    const ceilingRate = Math.round((sizes.changes / ceilingMs) * 1000);
    const syncRate = Math.round((peers.length / syncMs) * 1000);
    const syncCeilingRate = Math.round((peers.length / syncCeilingMs) * 1000);
    const target = Math.round((30 * peers.length) / 10_000);
    return {
      rows: [
        {
          scenario: `Gateway full sync (${peers.length} peers, ${chunks} chunks of ${CHUNK})`,
          unit: 'peers/s',
          ours: syncRate,
          ceiling: syncCeilingRate,
          ratio: ratio(syncRate, syncCeilingRate),
          oursLatency: null,
          ceilingLatency: null,
          target: `≤ ${target} s (30 s per 10,000 peers)`,
          met: syncMs <= target * 1000,
          note:
            `${(syncMs / 1000).toFixed(1)} s through MQTT, interface and firewall (${elements} pair elements) ` +
            `vs ${(syncCeilingMs / 1000).toFixed(1)} s of raw UAPI writes of the same peers`,
        },
        {
          scenario: `Gateway change set with ${peers.length} peers (apply → reply, one at a time)`,
          unit: 'changes/s',
          ours: oursRate,
          ceiling: ceilingRate,
          ratio: ratio(oursRate, ceilingRate),
          oursLatency: latencyPair(oursSummary),
          ceilingLatency: latencyPair(ceilingSummary),
          target: 'p99 ≤ 50 ms',
          met: errors === 0 && oursSummary.p99Ms <= 50,
          errorRate: errors / sizes.changes,
          note:
            'each change adds a client peer paired with one device (interface + firewall) or removes it; ' +
            `ceiling: a raw single-peer UAPI set on the same interface; a statistics poll there takes ${polls[2].toFixed(0)} ms`,
        },
      ],
      details: {
        peers: peers.length,
        chunks,
        pairElements: elements,
        syncMs: Math.round(syncMs),
        syncCeilingMs: Math.round(syncCeilingMs),
        changes: sizes.changes,
        changeErrors: errors,
        ours: oursSummary,
        ceiling: ceilingSummary,
        statsPollMs: { min: Math.round(polls[0]), median: Math.round(polls[2]), max: Math.round(polls[4]) },
        memory,
      },
    };
  } finally {
    await cleanup();
  }
}

module.exports = {
  id: 'gateway-sync',
  title: 'VPN gateway peer sync',
  timeoutMs: (ctx) => ((ctx.opts.gateway ?? DEFAULTS.full).peers / 1000) * 30_000 + 300_000,
  skip,
  run,
};

// Standalone: compiles the app (or reuses the harness's build) and runs only this scenario.
if (require.main === module) {
  const { buildApp } = require('../lib/build');
  const quick = process.argv.includes('--quick');
  const t0 = Date.now();
  const log = (msg) =>
    process.stderr.write(`[gateway-sync ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);
  procs.installSignalHandlers();
  (async () => {
    const reason = await skip();
    if (reason) {
      log(`skipped: ${reason}`);
      return 0;
    }
    const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'vpncloud-bench-gw-'));
    procs.onCleanup(() => fs.rmSync(workDir, { recursive: true, force: true }));
    const ctx = {
      opts: { gateway: quick ? DEFAULTS.quick : DEFAULTS.full },
      log,
      workDir,
      distDir: await buildApp(log),
    };
    const result = await run(ctx);
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  })()
    .catch((err) => {
      log(`error: ${err.stack ?? err}`);
      return 1;
    })
    .then(async (code) => {
      await procs.cleanupAll();
      process.exit(code);
    });
}
