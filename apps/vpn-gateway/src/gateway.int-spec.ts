// The VPN gateway end to end with real tools: the gateway process (run from source with ts-node)
// in its own network namespace, four "devices" in theirs (wireguard-go configured with wg and ip),
// all joined by a bridge in an underlay namespace (198.18.0.0/24); tunnel addresses in 100.64.0.0/10.
// A fake cloud drives the gateway over an in-process aedes broker that enforces the gateway's ACL.
// Needs root and wireguard-go, wg, ip, ping, nft, sysctl; under CI=true their absence fails the test.
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createBroker } from 'aedes';
import type Aedes from 'aedes';
import { connectAsync, MqttClient } from 'mqtt';

import {
  GATEWAY_APP_ID,
  GatewayPeer,
  GatewayPeerStats,
  GatewayReply,
  Topics,
  buildCommandRequest,
  decodeKuraPayload,
  deviceMayPublish,
  deviceMaySubscribe,
  encodeGatewayApply,
  encodeGatewaySync,
  encodeKuraPayload,
  parseGatewayPeerReport,
  parseTopic,
  readBirthCertificate,
  readGatewayReply,
} from '@app/protocol';
import { runSystemCommand } from '@app/edge';
import { eventually, holds } from '../../../test/support/eventually';
import { TUNNEL_NEEDS, describeWhen } from '../../../test/support/prerequisites';

const ROOT = join(__dirname, '..', '..', '..');

// Every name carries a random suffix: namespaces, and interfaces too, because wireguard-go's control
// socket (/var/run/wireguard/<name>.sock) is one file for the whole host, whatever the namespace.
const sfx = randomBytes(3).toString('hex');
const UNDERLAY_NS = `gwt-ul-${sfx}`;
const GW_NS = `gwt-gw-${sfx}`;
const GW_IF = `gw${sfx}`;
const BRIDGE = `br${sfx}`;
const GW_UNDERLAY = '198.18.0.1';
const GW_PORT = 51820;
const ACCOUNT = `gwt-${sfx}`;
const GW_ID = `gateway-${sfx}`;
const CLOUD_ID = `cloud-${sfx}`;
const ACCOUNT_A = randomUUID();
const ACCOUNT_B = randomUUID();
/** The gateway's address in each subnet it serves: account A, account B, engineers' clients. */
const GW_ADDRESSES = ['100.64.1.1/24', '100.64.2.1/24', '100.64.3.1/24'];

interface Device {
  name: 'a1' | 'a2' | 'b1' | 'c';
  ns: string;
  ifname: string;
  underlay: string;
  tunnel: string;
  gateway: string;
  publicKey: string;
}

const DEVICES: Omit<Device, 'publicKey'>[] = [
  { name: 'a1', underlay: '198.18.0.11', tunnel: '100.64.1.2', gateway: '100.64.1.1' },
  { name: 'a2', underlay: '198.18.0.12', tunnel: '100.64.1.3', gateway: '100.64.1.1' },
  { name: 'b1', underlay: '198.18.0.13', tunnel: '100.64.2.2', gateway: '100.64.2.1' },
  { name: 'c', underlay: '198.18.0.14', tunnel: '100.64.3.2', gateway: '100.64.3.1' },
].map((d) => ({ ...d, ns: `gwt-${d.name}-${sfx}`, ifname: `w${d.name}${sfx}` })) as Omit<
  Device,
  'publicKey'
>[];

const inNs = (ns: string, file: string, args: string[], input?: string): Promise<string> =>
  runSystemCommand('ip', ['netns', 'exec', ns, file, ...args], input === undefined ? {} : { input });

jest.setTimeout(180_000);

let workDir: string;
let stateDir: string;
const namespaces: string[] = [];
const wgInterfaces: [string, string][] = [];
const devices = new Map<Device['name'], Device>();
let broker: Aedes | undefined;
let server: Server | undefined;
let brokerUrl: string;
let cloud: MqttClient | undefined;
let gateway: GatewayProcess | undefined;
let gatewayPublicKey: string;
let serial = 0;
const replies = new Map<string, (r: GatewayReply) => void>();
const reports: { at: number; peers: GatewayPeerStats[] }[] = [];
const lifecycle: { kind: string; at: number }[] = [];

// ---------------------------------------------------------------------------------------------
// Helpers

/** A ping that may need a handshake first: retried until it answers or the deadline passes. */
async function reaches(from: Device, address: string, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await inNs(from.ns, 'ping', ['-c', '1', '-W', '1', address]).then(
      () => true,
      () => false,
    );
    if (ok || Date.now() >= deadline) return ok;
  }
}

/** Three pings, none of which may come back. */
async function blocked(from: Device, address: string): Promise<boolean> {
  return inNs(from.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '1', address]).then(
    () => false,
    () => true,
  );
}

function device(name: Device['name']): Device {
  const d = devices.get(name);
  if (d === undefined) throw new Error(`device ${name} not set up`);
  return d;
}

function peerOf(name: Device['name'], allow: Device['name'][] = []): GatewayPeer {
  const d = device(name);
  return {
    publicKey: d.publicKey,
    allowedIps: [`${d.tunnel}/32`],
    kind: name === 'c' ? 'client' : 'device',
    accountId: name === 'b1' ? ACCOUNT_B : ACCOUNT_A,
    allow: allow.map((n) => device(n).publicKey),
  };
}

async function request(command: 'sync' | 'apply', body: Buffer | undefined): Promise<GatewayReply> {
  if (cloud === undefined) throw new Error('no cloud client');
  const requestId = randomUUID();
  const reply = new Promise<GatewayReply>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reply to ${command} ${requestId}`)), 30_000);
    replies.set(requestId, (r) => {
      clearTimeout(timer);
      resolve(r);
    });
  });
  const payload = buildCommandRequest({ requestId, requesterClientId: CLOUD_ID, body });
  await cloud.publishAsync(Topics.gatewayCommand(ACCOUNT, GW_ID, command), encodeKuraPayload(payload), {
    qos: 1,
  });
  return reply;
}

/** A full sync in chunks of `chunkSize`; returns the last reply, checking the others. */
async function fullSync(peers: GatewayPeer[], chunkSize = 2): Promise<GatewayReply> {
  const next = serial + 1;
  const chunks = Math.max(1, Math.ceil(peers.length / chunkSize));
  let last: GatewayReply | undefined;
  for (let chunk = 0; chunk < chunks; chunk++) {
    last = await request(
      'sync',
      encodeGatewaySync({
        serial: next,
        chunk,
        last: chunk === chunks - 1,
        addresses: GW_ADDRESSES,
        peers: peers.slice(chunk * chunkSize, (chunk + 1) * chunkSize),
      }),
    );
    if (chunk < chunks - 1) expect(last).toMatchObject({ code: 200 });
  }
  if (last?.code === 200) serial = next;
  return last as GatewayReply;
}

async function apply(change: {
  upsert?: GatewayPeer[];
  remove?: string[];
  previous?: number;
}): Promise<GatewayReply> {
  const next = serial + 1;
  const reply = await request(
    'apply',
    encodeGatewayApply({
      serial: next,
      previous: change.previous ?? serial,
      addresses: GW_ADDRESSES,
      upsert: change.upsert ?? [],
      remove: change.remove ?? [],
    }),
  );
  if (reply.code === 200) serial = next;
  return reply;
}

async function gatewayPeers(): Promise<string[]> {
  const out = await inNs(GW_NS, 'wg', ['show', GW_IF, 'peers']);
  return out
    .split('\n')
    .filter((l) => l !== '')
    .sort();
}

/** Latest handshake (epoch seconds) the gateway has with each peer. */
async function gatewayHandshakes(): Promise<Map<string, number>> {
  const out = await inNs(GW_NS, 'wg', ['show', GW_IF, 'latest-handshakes']);
  return new Map(
    out
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => {
        const [key, seconds] = l.split('\t');
        return [key, Number(seconds)] as [string, number];
      }),
  );
}

async function linkExists(ns: string, ifname: string): Promise<boolean> {
  return inNs(ns, 'ip', ['link', 'show', 'dev', ifname]).then(
    () => true,
    () => false,
  );
}

async function tableExists(): Promise<boolean> {
  return inNs(GW_NS, 'nft', ['list', 'table', 'inet', `vpngw_${GW_IF}`]).then(
    () => true,
    () => false,
  );
}

/** The pid of the wireguard-go serving `ifname` (the names are unique to this test run). */
function wireguardGoPid(ifname: string): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv[0].endsWith('wireguard-go') && argv[1] === ifname) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** The gateway as a real process: started from source, its JSON log lines kept for assertions. */
class GatewayProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  private readonly child: ChildProcess;

  constructor() {
    this.child = spawn(
      process.execPath,
      [
        '-r',
        'ts-node/register/transpile-only',
        '-r',
        'tsconfig-paths/register',
        join(ROOT, 'apps/vpn-gateway/src/main.ts'),
        '--broker',
        brokerUrl,
        '--account',
        ACCOUNT,
        '--client-id',
        GW_ID,
        '--username',
        GW_ID,
        '--listen-port',
        String(GW_PORT),
        '--interface',
        GW_IF,
        '--netns',
        GW_NS,
        '--state-dir',
        stateDir,
        '--stats-interval-ms',
        '2000',
        '--log-level',
        'debug',
      ],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '/root',
          TS_NODE_PROJECT: join(ROOT, 'tsconfig.json'),
          VPN_GATEWAY_PASSWORD: 'gateway-secret',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let buffer = '';
    const onData = (chunk: Buffer): void => {
      buffer += chunk.toString('utf8');
      let i: number;
      while ((i = buffer.indexOf('\n')) >= 0) {
        this.lines.push(buffer.slice(0, i));
        buffer = buffer.slice(i + 1);
      }
    };
    this.child.stdout?.on('data', onData);
    this.child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async waitFor(text: string, timeoutMs = 60_000, from = 0): Promise<string> {
    let found: string | undefined;
    await eventually(
      () => {
        found = this.lines.slice(from).find((l) => l.includes(text));
        if (found !== undefined) return;
        if (!this.running) throw new Error(`gateway exited:\n${this.tail()}`);
        throw new Error(`no gateway log "${text}" yet; last lines:\n${this.lines.slice(-15).join('\n')}`);
      },
      timeoutMs,
      50,
    );
    return found as string;
  }

  tail(n = 30): string {
    return this.lines.slice(-n).join('\n');
  }

  async kill(signal: NodeJS.Signals): Promise<number | null> {
    if (!this.running) return this.child.exitCode;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

async function startGateway(): Promise<GatewayProcess> {
  const births = lifecycle.filter((e) => e.kind === 'birth').length;
  gateway = new GatewayProcess();
  await gateway.waitFor('"gateway ready"');
  await eventually(
    async () =>
      holds('BIRTH at the cloud', lifecycle.filter((e) => e.kind === 'birth').length > births, (ok) => ok),
    15_000,
    50,
  );
  serial = 0;
  return gateway;
}

// ---------------------------------------------------------------------------------------------
// Set-up and clean-up

async function startBroker(): Promise<void> {
  const gatewayClients = new WeakSet<object>();
  broker = createBroker({
    authenticate: (client, username, password, done) => {
      // The gateway connects with its full client id, {account}:{name}, as the cloud's broker wants.
      if (
        username === GW_ID &&
        password?.toString() === 'gateway-secret' &&
        client.id === `${ACCOUNT}:${GW_ID}`
      ) {
        gatewayClients.add(client);
        return done(null, true);
      }
      done(null, username === CLOUD_ID);
    },
    // The gateway gets exactly the ACL the cloud's broker gives it.
    authorizePublish: (client, packet, done) => {
      if (client === null || !gatewayClients.has(client)) return done(null);
      done(
        deviceMayPublish(ACCOUNT, GW_ID, packet.topic, GATEWAY_APP_ID) ? null : new Error('not authorized'),
      );
    },
    authorizeSubscribe: (client, sub, done) => {
      if (!gatewayClients.has(client)) return done(null, sub);
      done(null, deviceMaySubscribe(ACCOUNT, GW_ID, sub.topic) ? sub : null);
    },
  });
  const b = broker;
  server = createServer({ noDelay: true }, (socket) => b.handle(socket));
  await new Promise<void>((resolve, reject) => {
    server?.once('error', reject);
    server?.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('broker has no port');
  brokerUrl = `mqtt://127.0.0.1:${address.port}`;
}

async function startCloud(): Promise<void> {
  cloud = await connectAsync(brokerUrl, { clientId: CLOUD_ID, username: CLOUD_ID, protocolVersion: 4 });
  cloud.on('message', (topic, bytes) => {
    const parsed = parseTopic(topic);
    const payload = decodeKuraPayload(bytes);
    if (parsed?.kind === 'reply') {
      const reply = readGatewayReply(payload);
      if (reply !== null) replies.get(parsed.requestId)?.(reply);
    } else if (parsed?.kind === 'gateway-peers') {
      reports.push({ at: Date.now(), peers: parseGatewayPeerReport(payload.body).peers });
    } else if (parsed?.kind === 'birth') {
      const birth = readBirthCertificate(payload);
      if (birth.publicKey !== undefined) gatewayPublicKey = birth.publicKey;
      lifecycle.push({ kind: 'birth', at: Date.now() });
      lifecycle.push({ kind: `birth:${JSON.stringify(birth)}`, at: Date.now() });
    } else if (parsed !== null) {
      lifecycle.push({ kind: parsed.kind, at: Date.now() });
    }
  });
  await cloud.subscribeAsync(
    [
      `$EDC/${ACCOUNT}/${CLOUD_ID}/${GATEWAY_APP_ID}/REPLY/+`,
      Topics.gatewayPeers(ACCOUNT, GW_ID),
      `$EDC/${ACCOUNT}/${GW_ID}/MQTT/+`,
    ],
    { qos: 1 },
  );
}

async function addNamespace(ns: string): Promise<void> {
  await runSystemCommand('ip', ['netns', 'add', ns]);
  namespaces.push(ns);
  await inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
}

/** A namespace on the underlay bridge, with `address`/24 on its end of a veth pair. */
async function joinUnderlay(ns: string, tag: string, address: string): Promise<void> {
  const outer = `u${tag}${sfx}`;
  const inner = `e${tag}${sfx}`;
  await runSystemCommand('ip', [
    'link',
    'add',
    outer,
    'netns',
    UNDERLAY_NS,
    'type',
    'veth',
    'peer',
    'name',
    inner,
    'netns',
    ns,
  ]);
  await inNs(UNDERLAY_NS, 'ip', ['link', 'set', outer, 'master', BRIDGE, 'up']);
  await inNs(ns, 'ip', ['address', 'add', `${address}/24`, 'dev', inner]);
  await inNs(ns, 'ip', ['link', 'set', inner, 'up']);
}

async function setUpDevice(spec: Omit<Device, 'publicKey'>): Promise<void> {
  await addNamespace(spec.ns);
  await joinUnderlay(spec.ns, spec.name, spec.underlay);
  const keyFile = join(workDir, `${spec.name}.key`);
  const key = (await runSystemCommand('wg', ['genkey'])).trim();
  await runSystemCommand('sh', ['-c', 'umask 077 && cat > "$0"', keyFile], { input: `${key}\n` });
  const publicKey = (await runSystemCommand('wg', ['pubkey'], { input: `${key}\n` })).trim();
  await inNs(spec.ns, 'wireguard-go', [spec.ifname]);
  wgInterfaces.push([spec.ns, spec.ifname]);
  // AllowedIPs and route cover all of 100.64.0.0/10: the device would send anything to the
  // gateway, so what arrives elsewhere is decided by the gateway's firewall alone.
  await inNs(spec.ns, 'wg', [
    'set',
    spec.ifname,
    'private-key',
    keyFile,
    'peer',
    gatewayPublicKey,
    'endpoint',
    `${GW_UNDERLAY}:${GW_PORT}`,
    'allowed-ips',
    '100.64.0.0/10',
    'persistent-keepalive',
    '25',
  ]);
  await inNs(spec.ns, 'ip', ['address', 'add', `${spec.tunnel}/32`, 'dev', spec.ifname]);
  await inNs(spec.ns, 'ip', ['link', 'set', spec.ifname, 'up']);
  await inNs(spec.ns, 'ip', ['route', 'add', '100.64.0.0/10', 'dev', spec.ifname]);
  devices.set(spec.name, { ...spec, publicKey });
}

/** Deletes the interface and waits for its wireguard-go to go; kills it (by its pid) if it stays. */
async function removeWireguard(ns: string, ifname: string): Promise<void> {
  await inNs(ns, 'ip', ['link', 'del', 'dev', ifname]).catch(() => undefined);
  const socket = `/var/run/wireguard/${ifname}.sock`;
  await eventually(
    async () => holds(`${ifname}'s wireguard-go to exit`, wireguardGoPid(ifname) === undefined, (ok) => ok),
    5000,
    50,
  ).catch(() => {
    const pid = wireguardGoPid(ifname);
    if (pid !== undefined) process.kill(pid, 'SIGKILL');
  });
  rmSync(socket, { force: true });
}

/** Chosen when the file loads: skipped (reported as such) without the tools, a failure in CI. */
const describeHere = describeWhen('VPN gateway integration test', TUNNEL_NEEDS);

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'vpngw-int-'));
  stateDir = join(workDir, 'gateway-state');
  await addNamespace(UNDERLAY_NS);
  await inNs(UNDERLAY_NS, 'ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
  await inNs(UNDERLAY_NS, 'ip', ['link', 'set', BRIDGE, 'up']);
  await addNamespace(GW_NS);
  await joinUnderlay(GW_NS, 'gw', GW_UNDERLAY);
  await startBroker();
  await startCloud();
  await startGateway();
  for (const spec of DEVICES) await setUpDevice(spec);
}, 180_000);

afterAll(async () => {
  if (gateway?.running === true) await gateway.kill('SIGTERM');
  await cloud?.endAsync(true).catch(() => undefined);
  if (server !== undefined) await new Promise((resolve) => server?.close(resolve));
  await new Promise<void>((resolve) => (broker ? broker.close(() => resolve()) : resolve()));
  // The gateway's interface too, should its clean stop not have happened.
  for (const [ns, ifname] of [...wgInterfaces, [GW_NS, GW_IF] as [string, string]])
    await removeWireguard(ns, ifname);
  for (const ns of namespaces.reverse())
    await runSystemCommand('ip', ['netns', 'del', ns]).catch(() => undefined);
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true });
}, 60_000);

// ---------------------------------------------------------------------------------------------

describeHere('VPN gateway (wireguard-go, nftables, network namespaces)', () => {
  const dump = (): void => {
    if (gateway !== undefined) console.error(`gateway log tail:\n${gateway.tail(40)}`);
  };

  it('should announce itself in BIRTH with its application, key and listen port', () => {
    const birth = lifecycle.find((e) => e.kind.startsWith('birth:'));
    const cert = JSON.parse((birth?.kind ?? 'birth:{}').slice(6)) as Record<string, unknown>;
    expect(cert).toMatchObject({ displayName: GW_ID, applicationIds: [GATEWAY_APP_ID], listenPort: GW_PORT });
    expect(cert.publicKey).toBe(gatewayPublicKey);
    expect(readFileSync(join(stateDir, 'wireguard-private.key'), 'utf8')).not.toContain(gatewayPublicKey);
    const logs = gateway?.lines.join('\n') ?? '';
    expect(logs).toContain('"gateway ready"');
    expect(logs).not.toContain('gateway-secret');
    const privateKey = readFileSync(join(stateDir, 'wireguard-private.key'), 'utf8').trim();
    expect(logs).not.toContain(privateKey);
    expect(logs).not.toContain(Buffer.from(privateKey, 'base64').toString('hex'));
  });

  it('should apply a chunked full sync: exactly those peers, addresses and the serial', async () => {
    try {
      const reply = await fullSync([peerOf('a1'), peerOf('a2'), peerOf('b1'), peerOf('c', ['a1'])]);
      expect(reply).toEqual({ code: 200, serial: 1 });
      expect(await gatewayPeers()).toEqual(
        ['a1', 'a2', 'b1', 'c'].map((n) => device(n as Device['name']).publicKey).sort(),
      );
      const addresses = await inNs(GW_NS, 'ip', ['-4', '-o', 'address', 'show', 'dev', GW_IF]);
      for (const a of GW_ADDRESSES) expect(addresses).toContain(a);
    } catch (err) {
      dump();
      throw err;
    }
  });

  it('should let every device reach the gateway, and the client the device it is allowed', async () => {
    for (const d of devices.values()) expect(await reaches(d, d.gateway)).toBe(true);
    expect(await reaches(device('c'), device('a1').tunnel)).toBe(true);
    expect(await reaches(device('a1'), device('c').tunnel)).toBe(true);
  });

  it('should report each first handshake on the peers topic', async () => {
    for (const name of ['a1', 'a2', 'b1', 'c'] as const) {
      const key = device(name).publicKey;
      await eventually(
        async () =>
          holds(
            `a report of ${name}'s handshake`,
            reports.some((r) => r.peers.some((p) => p.publicKey === key && p.lastHandshakeOn !== null)),
            (ok) => ok,
          ),
        15_000,
        50,
      );
      const first = reports.flatMap((r) => r.peers).find((p) => p.publicKey === key);
      expect(first?.lastHandshakeOn).toBeGreaterThan(Date.now() - 120_000);
    }
  });

  it('should forward nothing else: no pair, no packet', async () => {
    expect(await blocked(device('c'), device('a2').tunnel)).toBe(true);
    expect(await blocked(device('c'), device('b1').tunnel)).toBe(true);
    expect(await blocked(device('a1'), device('a2').tunnel)).toBe(true);
    expect(await blocked(device('b1'), device('a1').tunnel)).toBe(true);
  });

  it('should open a pair listed by one side only, both ways, and close it again', async () => {
    expect(await apply({ upsert: [peerOf('a1', ['a2'])] })).toEqual({ code: 200, serial });
    expect(await reaches(device('a2'), device('a1').tunnel)).toBe(true);
    expect(await reaches(device('a1'), device('a2').tunnel)).toBe(true);
    // C still reaches A1: its own listing holds that pair.
    expect(await reaches(device('c'), device('a1').tunnel)).toBe(true);
    expect(await apply({ upsert: [peerOf('a1')] })).toEqual({ code: 200, serial });
    expect(await blocked(device('a1'), device('a2').tunnel)).toBe(true);
    expect(await reaches(device('c'), device('a1').tunnel)).toBe(true);
  });

  it('should add and remove its own addresses as the change sets list them', async () => {
    const addresses = (): Promise<string> => inNs(GW_NS, 'ip', ['-4', '-o', 'address', 'show', 'dev', GW_IF]);
    const reply = await request(
      'apply',
      encodeGatewayApply({
        serial: serial + 1,
        previous: serial,
        addresses: [...GW_ADDRESSES.slice(0, 2), '100.64.4.1/24'],
        upsert: [],
        remove: [],
      }),
    );
    expect(reply).toEqual({ code: 200, serial: serial + 1 });
    serial++;
    expect(await addresses()).toContain('100.64.4.1/24');
    expect(await addresses()).not.toContain(GW_ADDRESSES[2]);
    expect(await apply({})).toEqual({ code: 200, serial });
    expect(await addresses()).not.toContain('100.64.4.1/24');
    expect(await addresses()).toContain(GW_ADDRESSES[2]);
  });

  it('should refuse a change set from another serial with 409 and change nothing', async () => {
    const before = await gatewayPeers();
    const held = serial;
    // A serial the gateway moved past (or never held): valid on the wire, wrong for this gateway.
    const reply = await apply({ remove: [device('c').publicKey], previous: held - 1 });
    expect(reply).toMatchObject({ code: 409, serial: held });
    expect(await gatewayPeers()).toEqual(before);
    expect(await reaches(device('c'), device('a1').tunnel)).toBe(true);
  });

  it('should refuse malformed bodies and out-of-order chunks without changing anything', async () => {
    const before = await gatewayPeers();
    const held = serial;
    expect(await request('apply', Buffer.from('not json'))).toMatchObject({ code: 400, serial: held });
    expect(
      await request('sync', Buffer.from(JSON.stringify({ serial: 9, chunk: 0, last: true }))),
    ).toMatchObject({
      code: 400,
      serial: held,
    });
    const stray = encodeGatewaySync({ serial: held + 1, chunk: 3, last: true, addresses: [], peers: [] });
    expect(await request('sync', stray)).toMatchObject({ code: 409, serial: held });
    expect(await gatewayPeers()).toEqual(before);
  });

  it('should cut a removed client off at once', async () => {
    expect(await apply({ remove: [device('c').publicKey] })).toEqual({ code: 200, serial });
    expect(await gatewayPeers()).not.toContain(device('c').publicKey);
    expect(await blocked(device('c'), device('a1').tunnel)).toBe(true);
    expect(await blocked(device('c'), device('c').gateway)).toBe(true);
  });

  it('should resume handshakes within seconds after a crash and a host restart, from stored endpoints', async () => {
    const current = gateway as GatewayProcess;
    const keys = ['a1', 'a2', 'b1'].map((n) => device(n as Device['name']).publicKey);
    await eventually(
      async () =>
        holds(
          'endpoints in peers.json',
          (() => {
            if (!existsSync(join(stateDir, 'peers.json'))) return false;
            const stored = JSON.parse(readFileSync(join(stateDir, 'peers.json'), 'utf8')) as {
              endpoints: Record<string, string>;
            };
            return keys.every((k) => stored.endpoints[k]?.startsWith('198.18.0.'));
          })(),
          (ok) => ok,
        ),
      15_000,
      50,
    );
    await current.kill('SIGKILL');
    // wireguard-go outlives the gateway process; a host restart takes it and the rules away.
    expect(await linkExists(GW_NS, GW_IF)).toBe(true);
    await removeWireguard(GW_NS, GW_IF);
    await inNs(GW_NS, 'nft', ['delete', 'table', 'inet', `vpngw_${GW_IF}`]);

    const restarted = Date.now();
    await startGateway();
    expect(await fullSync([peerOf('a1'), peerOf('a2'), peerOf('b1'), peerOf('c', ['a1'])])).toEqual({
      code: 200,
      serial: 1,
    });
    // No device sends anything: the handshake comes from the gateway's keepalive to the stored endpoint.
    await eventually(
      async () =>
        holds(
          'handshakes with a1, a2 and b1',
          await (async () => {
            const handshakes = await gatewayHandshakes();
            return keys.every((k) => (handshakes.get(k) ?? 0) * 1000 >= restarted - 1000);
          })(),
          (ok) => ok,
        ),
      15_000,
      50,
    );
    expect(await reaches(device('a1'), device('a1').gateway, 5000)).toBe(true);
  });

  it('should take over the interface of a crashed run, keeping its sessions', async () => {
    const devicesOnly = async (): Promise<[string, number][]> => {
      const all = await gatewayHandshakes();
      return ['a1', 'a2', 'b1'].map((n) => {
        const key = device(n as Device['name']).publicKey;
        return [key, all.get(key) ?? 0];
      });
    };
    const before = await devicesOnly();
    expect(before.every(([, seconds]) => seconds > 0)).toBe(true);
    await (gateway as GatewayProcess).kill('SIGKILL');
    const next = await startGateway();
    await next.waitFor('taking over the interface of a previous run', 5000);
    const takenOver = next.lines.length;
    expect(await devicesOnly()).toEqual(before);
    // The pairs of the previous run hold until the first full sync, which then writes no peer.
    expect(await reaches(device('c'), device('a1').tunnel)).toBe(true);
    expect(await blocked(device('a1'), device('a2').tunnel)).toBe(true);
    const reply = await fullSync([peerOf('a1'), peerOf('a2'), peerOf('b1'), peerOf('c', ['a1'])]);
    expect(reply).toEqual({ code: 200, serial: 1 });
    await next.waitFor('"full sync applied"', 5000, takenOver);
    expect(next.lines.slice(takenOver).filter((l) => l.includes('interface peers written'))).toEqual([]);
    expect(await devicesOnly()).toEqual(before);
    expect(await reaches(device('c'), device('a1').tunnel)).toBe(true);
    expect(await blocked(device('c'), device('a2').tunnel)).toBe(true);
  });

  it('should stop cleanly on SIGTERM: DC, interface and firewall table removed, exit 0', async () => {
    const current = gateway as GatewayProcess;
    expect(await current.kill('SIGTERM')).toBe(0);
    await eventually(
      async () =>
        holds(
          'DC at the cloud',
          lifecycle.some((e) => e.kind === 'dc'),
          (ok) => ok,
        ),
      15_000,
      50,
    );
    expect(await linkExists(GW_NS, GW_IF)).toBe(false);
    expect(await tableExists()).toBe(false);
    await eventually(
      async () => holds('wireguard-go to exit', wireguardGoPid(GW_IF) === undefined, (ok) => ok),
      5000,
      50,
    );
  });
});
