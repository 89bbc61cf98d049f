'use strict';
// Real tunnels: the real vpn-gateway process (its wireguard-go interface in a namespace of its own)
// and real agents with the WireGuard driver (each tunnel in a namespace of its own), all on one
// underlay bridge (198.18.0.0/24) in an underlay namespace, driven by the harness's API.
//  1. `POST …/vpn/_connect` → the first answered ping from the device's namespace to its gateway
//     address (`tunnel.gatewayAddress`), then `_disconnect`; R rounds over D agents, one after the
//     other, then D at once. Ceiling, in the same run and the same namespaces, alternating with
//     ours: the same tunnel by hand with no cloud: one UAPI set of the peer on the gateway
//     interface, then wireguard-go + `wg set` + `ip address add` + link up + routes on the device
//     side (what the agent's driver runs, with the values it got), then the first ping.
//  2. Full sync at scale: P device peers written into the gateway's desired state with SQL (in a
//     sub-account of the bench account, so that its subnet holds them), then the gateway process
//     restarted on its state dir: time from its start to "full sync applied" of every peer.
//     Ceiling: the same P peers written straight to a scratch wireguard-go interface in the
//     gateway's namespace over UAPI in chunks of 500 (interface start included).
// A simulated agent with a (fake) WireGuard key stays connected on the gateway throughout, so the
// bench account's gateway address stays on the gateway interface while the measured devices come
// and go: the ceiling has no cloud to put it there.
// Needs root, wireguard-go, wg, ip, ping, nft, sysctl. Traffic stays on 127.0.0.1 and in the
// namespaces made here; namespaces, interfaces, sockets, processes and rows are removed at the
// end, also on error and Ctrl-C.
const fs = require('node:fs');
const path = require('node:path');
const { randomBytes } = require('node:crypto');
const { execFile } = require('node:child_process');

const procs = require('../lib/procs');
const { Api } = require('../lib/api');
const { histogram, summarize } = require('../lib/stats');
const { ratio, latencyPair } = require('../lib/measure');
const { rssKiB } = require('../lib/system');

const TOOLS = ['wireguard-go', 'wg', 'ip', 'ping', 'nft', 'sysctl'];
const DEFAULTS = {
  full: { rounds: 20, devices: 4, peers: 10_000 },
  quick: { rounds: 3, devices: 2, peers: 500 },
};
const GW_UNDERLAY = '198.18.0.1';
const GW_PORT = 51820;
const CHUNK = 500;
/** `?timeout=` of the VPN commands, and how long one tunnel may take to answer its first ping. */
const COMMAND_TIMEOUT_MS = 30_000;
const PING_DEADLINE_MS = 20_000;
/** Above this share of failed connects the numbers mean nothing: the scenario fails. */
const MAX_ERROR_RATE = 0.5;

function sh(file, args, input, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.LOG_LEVEL; // a daemonising wireguard-go would keep our pipes open with it
    const child = execFile(
      file,
      args,
      { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
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
    return `missing ${missing.join(', ')} (apt-get install wireguard-go wireguard-tools iproute2 iputils-ping nftables procps)`;
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

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `intervalMs` until it holds; throws after timeoutMs. */
async function until(what, check, timeoutMs, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await pause(intervalMs);
  }
}

/** Deletes an interface and makes sure its wireguard-go (found by its unique name) and socket are gone. */
async function removeInterface(ns, ifname) {
  await inNs(ns, 'ip', ['link', 'del', 'dev', ifname]).catch(() => undefined);
  await until(`${ifname}'s wireguard-go to exit`, () => wireguardGoPid(ifname) === null, 5000, 10).catch(
    () => {
      const pid = wireguardGoPid(ifname);
      if (pid !== null) process.kill(pid, 'SIGKILL');
    },
  );
  fs.rmSync(`/var/run/wireguard/${ifname}.sock`, { force: true });
}

/** One ping from `ns` (waits at most 1 s for the answer). */
const pingOnce = (ns, address) =>
  inNs(ns, 'ping', ['-n', '-c', '1', '-W', '1', address]).then(
    () => true,
    () => false,
  );

/** Pings until the first answer; returns the number of pings sent. Bounded by timeoutMs. */
async function firstPing(ns, address, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (let pings = 1; ; pings++) {
    const sent = Date.now();
    if (await pingOnce(ns, address)) return pings;
    if (Date.now() >= deadline)
      throw new Error(`no ping answer from ${address} in ${ns} within ${timeoutMs} ms`);
    // A ping refused at once (no route yet) is retried after a breath, not in a hot loop.
    if (Date.now() - sent < 100) await pause(20);
  }
}

const round1 = (v) => Math.round(v * 10) / 10;
const us = (ms) => Math.max(1, Math.round(ms * 1000));

async function run(ctx) {
  const sizes = ctx.opts.tunnel ?? DEFAULTS.full;
  const edge = require(path.join(ctx.distDir, 'libs/edge/src'));
  const gatewayMain = path.join(ctx.distDir, 'apps/vpn-gateway/src/main.js');
  const agentMain = path.join(ctx.distDir, 'apps/vpn-agent/src/main.js');
  for (const f of [gatewayMain, agentMain]) if (!fs.existsSync(f)) throw new Error(`${f} was not built`);
  const echo = !!process.env.BENCH_ECHO;
  const baseEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root' };
  const api = new Api(ctx.api.url, ctx.token);
  const brokerUrl = ctx.api.brokerUrl;
  const scope = ctx.account.id;

  // Names: a random suffix, unique on the machine (wireguard-go sockets are machine-wide).
  let sfx;
  for (let i = 0; ; i++) {
    sfx = randomBytes(3).toString('hex');
    const taken =
      fs.existsSync(`/var/run/wireguard/tcg${sfx}.sock`) || fs.existsSync(`/run/netns/tcu-${sfx}`);
    if (!taken) break;
    if (i >= 5) throw new Error('no free interface name suffix');
  }
  const underlayNs = `tcu-${sfx}`;
  const bridge = `tcb${sfx}`;
  const gwNs = `tcg-${sfx}`;
  const gwIf = `tcg${sfx}`;
  const peersIf = `tcp${sfx}`;
  const workDir = fs.mkdtempSync(path.join(ctx.workDir, 'tunnel-'));

  // Clean-up steps, run in reverse order once; a resource made after the clean-up started is
  // removed at once (a Ctrl-C may come while a step is under way).
  const cleanups = [];
  let closing = false;
  const defer = async (what, fn) => {
    const step = () =>
      Promise.resolve()
        .then(fn)
        .catch((err) => ctx.log(`  tunnel-connect clean-up (${what}): ${err.message.split('\n')[0]}`));
    if (closing) {
      await step();
      throw new Error('tunnel-connect: stopping');
    }
    cleanups.push(step);
  };
  // One clean-up, however many callers (the scenario's finally and the harness's Ctrl-C hook
  // race): each waits for the same run to end.
  let cleaning = null;
  const cleanup = () =>
    (cleaning ??= (async () => {
      closing = true;
      for (const step of cleanups.splice(0).reverse()) await step();
    })());
  procs.onCleanup(cleanup);

  let hosts = 0;
  const addNamespace = async (ns) => {
    await sh('ip', ['netns', 'add', ns]);
    await defer(`namespace ${ns}`, () => sh('ip', ['netns', 'del', ns]));
    await inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
  };
  /** A namespace joined to the underlay bridge with `address`/24. */
  const addHost = async (ns, address) => {
    await addNamespace(ns);
    const n = ++hosts;
    const outer = `tco${n}${sfx}`;
    const inner = `tce${n}${sfx}`;
    await sh('ip', [
      'link',
      'add',
      outer,
      'netns',
      underlayNs,
      'type',
      'veth',
      'peer',
      'name',
      inner,
      'netns',
      ns,
    ]);
    await inNs(underlayNs, 'ip', ['link', 'set', outer, 'master', bridge, 'up']);
    await inNs(ns, 'ip', ['address', 'add', `${address}/24`, 'dev', inner]);
    await inNs(ns, 'ip', ['link', 'set', inner, 'up']);
  };

  try {
    await defer('work dir', () => fs.rmSync(workDir, { recursive: true, force: true }));
    // Last of all: no wireguard-go and no socket of any interface name of this run is left.
    const names = [gwIf, peersIf];
    for (let i = 0; i < sizes.devices; i++) names.push(`tca${i}${sfx}`, `tcs${i}${sfx}`);
    await defer('wireguard-go sweep', () => {
      for (const ifname of names) {
        const pid = wireguardGoPid(ifname);
        if (pid !== null) process.kill(pid, 'SIGKILL');
        fs.rmSync(`/var/run/wireguard/${ifname}.sock`, { force: true });
      }
    });
    // --- the network --------------------------------------------------------------------------
    await addNamespace(underlayNs);
    await inNs(underlayNs, 'ip', ['link', 'add', bridge, 'type', 'bridge']);
    await inNs(underlayNs, 'ip', ['link', 'set', bridge, 'up']);
    await addHost(gwNs, GW_UNDERLAY);

    // --- the gateway, in the bench account ------------------------------------------------------
    const created = await api.call('POST', `/v1/${scope}/gateways`, {
      name: `bench-hub-${sfx}`,
      endpoint: `${GW_UNDERLAY}:${GW_PORT}`,
    });
    const gatewayId = created.id;
    await defer('gateway record', () => api.call('DELETE', `/v1/${scope}/gateways/${gatewayId}`));
    const gwCreds = await api.call('POST', `/v1/${scope}/gateways/${gatewayId}/credentials`);
    const gwStateDir = path.join(workDir, 'gateway');
    fs.mkdirSync(gwStateDir, { mode: 0o700 });
    let gateway = null;
    const startGateway = () => {
      if (closing) throw new Error('tunnel-connect: stopping');
      return procs.start(
        'vpn-gateway',
        process.execPath,
        [
          gatewayMain,
          '--broker',
          brokerUrl,
          '--account',
          gwCreds.account,
          '--client-id',
          gwCreds.clientId,
          '--username',
          gwCreds.username,
          '--listen-port',
          String(GW_PORT),
          '--interface',
          gwIf,
          '--netns',
          gwNs,
          '--state-dir',
          gwStateDir,
          '--reconnect-period-ms',
          '200',
          '--log-level',
          'info',
        ],
        { env: { ...baseEnv, VPN_GATEWAY_PASSWORD: gwCreds.password }, echo },
      );
    };
    // A clean stop removes the interface and the firewall table; the rest makes sure of it.
    await defer('gateway interface', () => removeInterface(gwNs, gwIf));
    await defer('gateway process', () => gateway?.stop('SIGTERM', 15_000));
    gateway = startGateway();
    await gateway.waitFor('"gateway ready"', 60_000);
    let gw;
    await until(
      'the gateway to be CONNECTED with its key',
      async () => {
        gw = await api.call('GET', `/v1/${scope}/gateways/${gatewayId}`);
        return gw.connection === 'CONNECTED' && !!gw.publicKey;
      },
      30_000,
      100,
    );
    const gwKey = gw.publicKey;
    const gwUapi = new edge.WireguardUapi(edge.uapiSocketPath(gwIf), 30_000);

    // --- the devices, created through REST ------------------------------------------------------
    const newDevice = async (clientId) => {
      const d = await api.call('POST', `/v1/${scope}/devices`, { clientId });
      await defer(`device ${clientId}`, () => api.call('DELETE', `/v1/${scope}/devices/${d.id}`));
      const c = await api.call('POST', `/v1/${scope}/devices/${d.id}/credentials`);
      return { id: d.id, clientId, tunnelAddress: d.tunnelAddress, creds: c };
    };
    const agentArgs = (c) => [
      agentMain,
      '--broker',
      brokerUrl,
      '--account',
      c.account,
      '--client-id',
      c.clientId,
      '--username',
      c.username,
      '--reconnect-period-ms',
      '200',
      '--log-level',
      'info',
    ];
    // The anchor: a simulated agent announcing a (fake) key, connected on the gateway throughout.
    const anchor = await newDevice(`tc-${sfx}-anchor`);
    const anchorProc = procs.start(
      'vpn-agent-anchor',
      process.execPath,
      [...agentArgs(anchor.creds), '--driver', 'simulated', '--announce-key', '--connect-delay-ms', '0'],
      { env: { ...baseEnv, VPN_AGENT_PASSWORD: anchor.creds.password }, echo },
    );
    await defer('anchor agent', () => anchorProc.stop('SIGTERM', 10_000));

    const devices = [];
    for (let i = 0; i < sizes.devices; i++) {
      const ns = `tc${i}-${sfx}`;
      await addHost(ns, `198.18.0.${10 + i}`);
      const d = await newDevice(`tc-${sfx}-${i}`);
      d.ns = ns;
      d.agentIf = `tca${i}${sfx}`;
      d.scratchIf = `tcs${i}${sfx}`;
      d.stateDir = path.join(workDir, `agent-${i}`);
      fs.mkdirSync(d.stateDir, { mode: 0o700 });
      await defer(`agent ${i} interfaces`, async () => {
        await removeInterface(ns, d.agentIf);
        await removeInterface(ns, d.scratchIf);
      });
      d.proc = procs.start(
        `vpn-agent-${i}`,
        process.execPath,
        [
          ...agentArgs(d.creds),
          '--driver',
          'wireguard',
          '--netns',
          ns,
          '--interface',
          d.agentIf,
          '--state-dir',
          d.stateDir,
          '--handshake-timeout-ms',
          '10000',
        ],
        { env: { ...baseEnv, VPN_AGENT_PASSWORD: d.creds.password }, echo },
      );
      await defer(`agent ${i}`, () => d.proc.stop('SIGTERM', 10_000));
      // The ceiling's key pair: the device's own would let the gateway's endpoint store learn an
      // endpoint for the agent's key from the ceiling, which the cloud's next add would then use.
      const privateKey = (await sh('wg', ['genkey'])).trim();
      d.scratch = {
        keyFile: path.join(workDir, `scratch-${i}.key`),
        publicKey: (await sh('wg', ['pubkey'], `${privateKey}\n`)).trim(),
      };
      fs.writeFileSync(d.scratch.keyFile, `${privateKey}\n`, { mode: 0o600 });
      devices.push(d);
    }
    await Promise.all(
      [anchorProc, ...devices.map((d) => d.proc)].map((p) => p.waitFor('"agent ready"', 60_000)),
    );
    const ids = [anchor.id, ...devices.map((d) => d.id)];
    await until(
      'the agents to be CONNECTED with their keys',
      async () =>
        (
          await ctx.sql(
            `SELECT count(*)::int AS n FROM device WHERE id = ANY($1::uuid[])
                AND connection_status = 'CONNECTED' AND vpn_public_key IS NOT NULL`,
            [ids],
          )
        ).rows[0].n === ids.length,
      30_000,
      100,
    );
    const command = (d, what) =>
      api.call('POST', `/v1/_/devices/${d.id}/vpn/${what}?timeout=${COMMAND_TIMEOUT_MS}`, undefined, {
        timeoutMs: COMMAND_TIMEOUT_MS + 5000,
      });
    await command(anchor, '_connect');
    await defer('anchor tunnel', () => command(anchor, '_disconnect'));

    // --- ours: _connect → first ping; _disconnect ---------------------------------------------------
    const errors = [];
    const oursUp = async (d) => {
      const t0 = performance.now();
      try {
        const body = await command(d, '_connect');
        const connectMs = performance.now() - t0;
        const address = body?.tunnel?.gatewayAddress;
        if (body?.connected !== true || !address)
          throw new Error(`_connect answered ${JSON.stringify(body).slice(0, 300)}`);
        d.gatewayAddress = address;
        const pings = await firstPing(d.ns, address, PING_DEADLINE_MS);
        return { ms: performance.now() - t0, connectMs, pings };
      } catch (err) {
        errors.push(`${d.clientId}: ${err.message.split('\n')[0]}`);
        return null;
      }
    };
    const oursDown = async (d) => {
      const t0 = performance.now();
      try {
        const body = await command(d, '_disconnect');
        if (body?.connected !== false)
          throw new Error(`_disconnect answered ${JSON.stringify(body).slice(0, 300)}`);
        return performance.now() - t0;
      } catch (err) {
        errors.push(`${d.clientId} (disconnect): ${err.message.split('\n')[0]}`);
        return null;
      }
    };

    // --- ceiling: the same tunnel by hand --------------------------------------------------------
    const ceilingUp = async (d) => {
      const p = d.profile;
      const t0 = performance.now();
      await gwUapi.set([
        `public_key=${edge.keyToHex(d.scratch.publicKey)}`,
        'replace_allowed_ips=true',
        `allowed_ip=${p.tunnelIp}/32`,
      ]);
      await inNs(d.ns, 'wireguard-go', [d.scratchIf]);
      await inNs(d.ns, 'wg', [
        'set',
        d.scratchIf,
        'private-key',
        d.scratch.keyFile,
        'peer',
        gwKey,
        'endpoint',
        p.endpoint,
        'allowed-ips',
        p.allowedIps.join(','),
        'persistent-keepalive',
        p.keepalive,
      ]);
      await inNs(d.ns, 'ip', ['address', 'add', p.address, 'dev', d.scratchIf]);
      await inNs(d.ns, 'ip', ['link', 'set', d.scratchIf, 'up']);
      for (const cidr of p.allowedIps) await inNs(d.ns, 'ip', ['route', 'replace', cidr, 'dev', d.scratchIf]);
      const pings = await firstPing(d.ns, d.gatewayAddress, PING_DEADLINE_MS);
      return { ms: performance.now() - t0, pings };
    };
    const ceilingDown = async (d) => {
      await gwUapi.set([`public_key=${edge.keyToHex(d.scratch.publicKey)}`, 'remove=true']);
      await removeInterface(d.ns, d.scratchIf);
    };

    // Warm-up (not counted): one connect per agent, which also tells the ceiling what the agent's
    // interface holds (address, AllowedIPs, endpoint, keepalive), then one ceiling per device.
    ctx.log(`  ${devices.length} WireGuard agents up; warming up`);
    for (const d of devices) {
      if (!(await oursUp(d))) throw new Error(`warm-up connect failed: ${errors.join('; ')}`);
      const addr = await inNs(d.ns, 'ip', ['-o', '-4', 'address', 'show', 'dev', d.agentIf]);
      const address = /inet (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(addr)?.[1];
      const field = async (what) => {
        const out = await inNs(d.ns, 'wg', ['show', d.agentIf, what]);
        const [key, value] = out.trim().split('\t');
        if (key !== gwKey) throw new Error(`${d.agentIf} has peer ${key}, not the gateway ${gwKey}`);
        return value;
      };
      const allowedIps = (await field('allowed-ips')).trim().split(/\s+/);
      d.profile = {
        address,
        tunnelIp: address?.split('/')[0],
        allowedIps,
        endpoint: await field('endpoints'),
        keepalive: (await field('persistent-keepalive')).replace(/ .*/, ''),
      };
      if (!address || d.profile.tunnelIp !== d.tunnelAddress)
        throw new Error(`${d.agentIf} holds ${addr.trim()}, not ${d.tunnelAddress}`);
      if ((await oursDown(d)) === null) throw new Error(`warm-up disconnect failed: ${errors.join('; ')}`);
      await ceilingUp(d);
      await ceilingDown(d);
    }
    errors.length = 0;
    // What one `ip netns exec` costs here: both sides run their tools (and pings) through it.
    const execMs = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await inNs(devices[0].ns, 'true', []);
      execMs.push(performance.now() - t0);
    }
    execMs.sort((a, b) => a - b);

    const phases = {};
    const measure = async (label, concurrent) => {
      const ours = histogram();
      const ceiling = histogram();
      const connect = histogram();
      const disconnect = histogram();
      const pings = { ours: {}, ceiling: {} };
      const count = (side, n) => (pings[side][n] = (pings[side][n] ?? 0) + 1);
      let attempts = 0;
      let failed = 0;
      const recordOurs = (r) => {
        attempts++;
        if (!r) return failed++;
        ours.recordValue(us(r.ms));
        connect.recordValue(us(r.connectMs));
        count('ours', r.pings);
      };
      const recordDown = (ms) => ms !== null && disconnect.recordValue(us(ms));
      const recordCeiling = (r) => {
        ceiling.recordValue(us(r.ms));
        count('ceiling', r.pings);
      };
      const started = performance.now();
      for (let r = 0; r < sizes.rounds; r++) {
        if (concurrent) {
          (await Promise.all(devices.map(ceilingUp))).forEach(recordCeiling);
          await Promise.all(devices.map(ceilingDown));
          (await Promise.all(devices.map(oursUp))).forEach(recordOurs);
          (await Promise.all(devices.map(oursDown))).forEach(recordDown);
        } else {
          for (const d of devices) {
            recordCeiling(await ceilingUp(d));
            await ceilingDown(d);
            recordOurs(await oursUp(d));
            recordDown(await oursDown(d));
          }
        }
        if (failed > attempts * MAX_ERROR_RATE && attempts >= devices.length * 2)
          throw new Error(
            `${label}: ${failed} of ${attempts} connects failed: ${errors.slice(0, 3).join('; ')}`,
          );
      }
      if (ours.totalCount === 0)
        throw new Error(`${label}: no connect succeeded: ${errors.slice(0, 3).join('; ')}`);
      phases[label] = {
        samples: attempts,
        failed,
        seconds: round1((performance.now() - started) / 1000),
        ours: summarize(ours),
        ceiling: summarize(ceiling),
        connectHttp: summarize(connect),
        disconnectHttp: summarize(disconnect),
        pingsUntilAnswer: pings,
        errors: errors.splice(0).slice(0, 10),
      };
      return phases[label];
    };
    ctx.log(`  connect → first ping: ${sizes.rounds} rounds × ${devices.length} agents, one after the other`);
    const serial = await measure('oneAtATime', false);
    ctx.log(`  connect → first ping: ${sizes.rounds} rounds × ${devices.length} agents at once`);
    const parallel = await measure('concurrent', true);

    // --- full sync of P peers after a gateway restart -------------------------------------------
    const root = await new Api(ctx.api.url).login('admin', ctx.adminPassword);
    const prefix = 32 - Math.max(8, Math.ceil(Math.log2(sizes.peers + 3)));
    let child = null;
    for (let k = 0; k < 10 && !child; k++) {
      const vpnSubnet = `10.${101 + k}.0.0/${prefix}`;
      child = await root
        .call('POST', `/v1/${scope}/accounts`, { name: `tc-${sfx}-peers`, vpnSubnet })
        .then((a) => ({ ...a, vpnSubnet: a.vpnSubnet ?? vpnSubnet }))
        .catch((err) => {
          if (/overlaps/i.test(err.message)) return null; // taken: try the next block
          throw err;
        });
    }
    if (!child) throw new Error('no free subnet for the peers account');
    await defer('peers account', () => root.call('DELETE', `/v1/${scope}/accounts/${child.id}`));
    await defer('peer rows', async () => {
      await ctx.sql('DELETE FROM gateway_peer WHERE gateway_id = $1 AND scope_id = $2', [
        gatewayId,
        child.id,
      ]);
      await ctx.sql('DELETE FROM device WHERE scope_id = $1', [child.id]);
    });

    ctx.log(`  gateway restart with ${sizes.peers} peers in its desired state (account ${child.vpnSubnet})`);
    const stopCode = await gateway.stop('SIGTERM', 15_000);
    if (stopCode !== 0) throw new Error(`gateway stop: exit ${stopCode}`);
    const inserted = await ctx.sql(
      `INSERT INTO device (scope_id, optlock, client_id, tunnel_ip, vpn_public_key)
       SELECT a.id, 1, $2 || lpad(g::text, 6, '0'), host(a.vpn_subnet + (g + 1))::inet,
              encode(sha256(convert_to($3 || g::text, 'UTF8')), 'base64')
         FROM account a, generate_series(1, $4::int) AS g
        WHERE a.id = $1`,
      [child.id, `tc-${sfx}-p`, `${sfx}-peer-`, sizes.peers],
    );
    if (inserted.rowCount !== sizes.peers)
      throw new Error(`inserted ${inserted.rowCount} devices, not ${sizes.peers}`);
    const peersInserted = await ctx.sql(
      `WITH g AS (UPDATE gateway SET desired_serial = desired_serial + 1 WHERE id = $1 RETURNING desired_serial)
       INSERT INTO gateway_peer (gateway_id, scope_id, kind, public_key, tunnel_ip, device_id, serial)
       SELECT $1, d.scope_id, 'device', d.vpn_public_key, d.tunnel_ip, d.id, g.desired_serial
         FROM device d, g WHERE d.scope_id = $2`,
      [gatewayId, child.id],
    );
    if (peersInserted.rowCount !== sizes.peers)
      throw new Error(`inserted ${peersInserted.rowCount} gateway peers, not ${sizes.peers}`);
    const expected = (
      await ctx.sql('SELECT count(*)::int AS n FROM gateway_peer WHERE gateway_id = $1 AND NOT removed', [
        gatewayId,
      ])
    ).rows[0].n;
    const peerRows = (
      await ctx.sql(
        `SELECT public_key, host(tunnel_ip) AS ip FROM gateway_peer
          WHERE gateway_id = $1 AND NOT removed ORDER BY serial, public_key`,
        [gatewayId],
      )
    ).rows;

    // Ceiling first (the gateway is down): the same peers over UAPI, interface start included.
    await defer('peers scratch interface', () => removeInterface(gwNs, peersIf));
    const scratch = new edge.WireguardUapi(edge.uapiSocketPath(peersIf), 30_000);
    const ceilingStarted = performance.now();
    await inNs(gwNs, 'wireguard-go', [peersIf]);
    await until(
      'the scratch interface',
      () =>
        scratch.get().then(
          () => true,
          () => false,
        ),
      5000,
      5,
    );
    const ceilingUpMs = performance.now() - ceilingStarted;
    for (let c = 0; c < peerRows.length; c += CHUNK) {
      const lines = [];
      for (const p of peerRows.slice(c, c + CHUNK))
        lines.push(
          `public_key=${edge.keyToHex(p.public_key)}`,
          'replace_allowed_ips=true',
          `allowed_ip=${p.ip}/32`,
        );
      await scratch.set(lines);
    }
    const ceilingMs = performance.now() - ceilingStarted;
    const scratchHeld = (await scratch.get()).peers.length;
    if (scratchHeld !== peerRows.length)
      throw new Error(`scratch interface holds ${scratchHeld} peers, not ${peerRows.length}`);
    await removeInterface(gwNs, peersIf);

    // Ours: the gateway process started again on its state dir, until the cloud's full sync is applied.
    const applied = new RegExp(
      `"peers":${expected}[,}].*"full sync applied"|"full sync applied".*"peers":${expected}[,}]`,
    );
    const syncTimeoutMs = 60_000 + sizes.peers * 6;
    const restarted = performance.now();
    gateway = startGateway();
    await gateway.waitFor('"gateway ready"', 60_000);
    const readyMs = performance.now() - restarted;
    const line = await gateway.waitFor(applied, syncTimeoutMs);
    const syncMs = performance.now() - restarted;
    const appliedFields = JSON.parse(line);
    const held = (await gwUapi.get()).peers.length;
    if (held !== expected) throw new Error(`gateway interface holds ${held} peers, not ${expected}`);
    const restView = await api.call('GET', `/v1/${scope}/gateways/${gatewayId}`);
    const memory = { gatewayKiB: rssKiB(gateway.pid), wireguardGoKiB: rssKiB(wireguardGoPid(gwIf)) };

    const oursRate = Math.round((expected / syncMs) * 1000);
    const ceilingRate = Math.round((peerRows.length / ceilingMs) * 1000);
    const latencyRow = (label, phase) => {
      const o = phase.ours;
      const c = phase.ceiling;
      return {
        scenario: label,
        unit: 'ms (p50)',
        ours: o.p50Ms,
        ceiling: c.p50Ms,
        // Time, not throughput: the ratio is ceiling / ours, so that 1 = as fast as by hand.
        ratio: ratio(c.p50Ms, o.p50Ms),
        oursLatency: latencyPair(o),
        ceilingLatency: latencyPair(c),
        target: 'reported (no target set)',
        met: null,
        errorRate: phase.failed / Math.max(phase.samples, 1),
        note:
          `ratio = ceiling p50 / ours p50; ours = _connect (gateway apply, agent: wireguard-go, wg, ip, ` +
          `handshake) → first answered ping, its HTTP answer alone p50 ${phase.connectHttp.p50Ms} ms; ` +
          'ceiling = one UAPI set on the gateway + wireguard-go, wg set, ip address/link/routes in the ' +
          `device's namespace → first answered ping; ${phase.samples} samples each; one \`ip netns exec\` ` +
          `(every tool and ping on both sides runs through one) takes ${round1(execMs[2])} ms here`,
      };
    };
    return {
      rows: [
        latencyRow(
          `Real tunnel: _connect → first ping, one at a time (${devices.length} WireGuard agents × ${sizes.rounds} rounds)`,
          serial,
        ),
        latencyRow(
          `Real tunnel: _connect → first ping, ${devices.length} agents at once (× ${sizes.rounds} rounds)`,
          parallel,
        ),
        {
          scenario: `Gateway restart: cloud full sync of ${expected} peers (process start → applied)`,
          unit: 'peers/s',
          ours: oursRate,
          ceiling: ceilingRate,
          ratio: ratio(oursRate, ceilingRate),
          oursLatency: null,
          ceilingLatency: null,
          target: 'reported (no target set)',
          met: null,
          note:
            `${(syncMs / 1000).toFixed(1)} s from the process start (BIRTH after ${(readyMs / 1000).toFixed(1)} s, ` +
            `the gateway's own apply ${appliedFields.ms} ms) vs ${(ceilingMs / 1000).toFixed(2)} s for a new ` +
            `wireguard-go interface and the same peers over UAPI in chunks of ${CHUNK}`,
        },
      ],
      details: {
        devices: devices.length,
        rounds: sizes.rounds,
        gatewayEndpoint: `${GW_UNDERLAY}:${GW_PORT}`,
        gatewayAddress: devices[0].gatewayAddress,
        netnsExecMs: { min: round1(execMs[0]), median: round1(execMs[2]), max: round1(execMs[4]) },
        profile: devices[0].profile,
        oneAtATime: serial,
        concurrent: parallel,
        fullSync: {
          peers: expected,
          insertedPeers: sizes.peers,
          subnet: child.vpnSubnet,
          syncMs: Math.round(syncMs),
          readyMs: Math.round(readyMs),
          gatewayApplyMs: appliedFields.ms,
          serial: appliedFields.serial,
          restPeers: restView.peers,
          ceilingMs: Math.round(ceilingMs),
          ceilingInterfaceMs: Math.round(ceilingUpMs),
          ceilingWritesMs: Math.round(ceilingMs - ceilingUpMs),
          memory,
        },
      },
    };
  } finally {
    await cleanup();
  }
}

module.exports = {
  id: 'tunnel-connect',
  title: 'Real tunnel: connect to first ping',
  timeoutMs: (ctx) => {
    const s = ctx.opts.tunnel ?? DEFAULTS.full;
    return 180_000 + s.rounds * s.devices * 2 * 10_000 + s.peers * 12;
  },
  skip,
  run,
};
