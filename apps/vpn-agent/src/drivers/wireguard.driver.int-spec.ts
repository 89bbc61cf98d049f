// A real WireGuard tunnel between two network namespaces: a wireguard-go "server" in one, the
// driver in the other, joined by a veth pair in 198.18.0.0/15 (benchmarking range), tunnel
// addresses in 100.64.0.0/10. Needs root and wireguard-go, wg, ip, ping.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { DISCONNECTED_IP, StatusCodes, VpnProfile } from '@app/protocol';

import { VpnDriverError } from './vpn-driver';
import { WireguardDriver } from './wireguard.driver';
import { createLogger, runSystemCommand } from '@app/edge';
import { describeWhen } from '../../../../test/support/prerequisites';

const TOOLS = ['wireguard-go', 'wg', 'ip', 'ping'];

// Every name carries a random suffix: namespaces, and the interfaces too, because wireguard-go's
// control socket (/var/run/wireguard/<name>.sock) is one file system-wide, whatever the namespace.
const sfx = randomBytes(3).toString('hex');
const SERVER_NS = `wgt-srv-${sfx}`;
const DEVICE_NS = `wgt-dev-${sfx}`;
const SERVER_IF = `wgs${sfx}`;
const DEVICE_IF = `wgd${sfx}`;
const SERVER_UNDERLAY = '198.18.0.1';
const SERVER_TUNNEL = '100.64.0.1';
const DEVICE_TUNNEL = '100.64.0.2';
const PORT = 51820;

const inNs = (ns: string, file: string, args: string[]): Promise<string> =>
  runSystemCommand('ip', ['netns', 'exec', ns, file, ...args]);

jest.setTimeout(30_000);

let workDir: string;
let serverPublicKey: string;
const logger = createLogger('silent');

function profile(overrides: Partial<VpnProfile> = {}): VpnProfile {
  return {
    type: 'wireguard',
    tunnelAddress: `${DEVICE_TUNNEL}/24`,
    serverEndpoint: `${SERVER_UNDERLAY}:${PORT}`,
    serverPublicKey,
    allowedIps: ['100.64.0.0/24'],
    dns: [],
    keepalive: 1,
    ...overrides,
  };
}

function driverFor(stateDir: string, handshakeTimeoutMs = 10_000): Promise<WireguardDriver> {
  return WireguardDriver.create(
    { stateDir, interfaceName: DEVICE_IF, netns: DEVICE_NS, handshakeTimeoutMs },
    logger,
  );
}

async function ping(ns: string, address: string): Promise<boolean> {
  return inNs(ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', address]).then(
    () => true,
    () => false,
  );
}

async function linkExists(ns: string, ifname: string): Promise<boolean> {
  return inNs(ns, 'ip', ['link', 'show', 'dev', ifname]).then(
    () => true,
    () => false,
  );
}

/** Chosen when the file loads: skipped (reported as such) without the tools, a failure in CI. */
const describeHere = describeWhen('WireGuard driver integration test', {
  root: true,
  tools: TOOLS,
  install: 'apt-get install wireguard-go wireguard-tools iproute2 iputils-ping',
});

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'wg-int-'));
  await runSystemCommand('ip', ['netns', 'add', SERVER_NS]);
  await runSystemCommand('ip', ['netns', 'add', DEVICE_NS]);
  for (const ns of [SERVER_NS, DEVICE_NS]) await inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
  await runSystemCommand('ip', [
    'link',
    'add',
    `vs${sfx}`,
    'netns',
    SERVER_NS,
    'type',
    'veth',
    'peer',
    'name',
    `vd${sfx}`,
    'netns',
    DEVICE_NS,
  ]);
  await inNs(SERVER_NS, 'ip', ['address', 'add', `${SERVER_UNDERLAY}/30`, 'dev', `vs${sfx}`]);
  await inNs(DEVICE_NS, 'ip', ['address', 'add', '198.18.0.2/30', 'dev', `vd${sfx}`]);
  await inNs(SERVER_NS, 'ip', ['link', 'set', `vs${sfx}`, 'up']);
  await inNs(DEVICE_NS, 'ip', ['link', 'set', `vd${sfx}`, 'up']);

  const serverKey = (await runSystemCommand('wg', ['genkey'])).trim();
  writeFileSync(join(workDir, 'server.key'), `${serverKey}\n`, { mode: 0o600 });
  serverPublicKey = (await runSystemCommand('wg', ['pubkey'], { input: serverKey })).trim();
  await inNs(SERVER_NS, 'wireguard-go', [SERVER_IF]);
  await inNs(SERVER_NS, 'wg', [
    'set',
    SERVER_IF,
    'listen-port',
    String(PORT),
    'private-key',
    join(workDir, 'server.key'),
  ]);
  await inNs(SERVER_NS, 'ip', ['address', 'add', `${SERVER_TUNNEL}/24`, 'dev', SERVER_IF]);
  await inNs(SERVER_NS, 'ip', ['link', 'set', SERVER_IF, 'up']);
}, 30_000);

afterAll(async () => {
  // Deleting the interfaces ends their wireguard-go processes; deleting the namespaces removes the veth pair.
  for (const [ns, ifname] of [
    [SERVER_NS, SERVER_IF],
    [DEVICE_NS, DEVICE_IF],
  ]) {
    await inNs(ns, 'ip', ['link', 'del', 'dev', ifname]).catch(() => undefined);
  }
  for (const ns of [SERVER_NS, DEVICE_NS])
    await runSystemCommand('ip', ['netns', 'del', ns]).catch(() => undefined);
  rmSync(workDir, { recursive: true, force: true });
});

describeHere('WireguardDriver (wireguard-go in network namespaces)', () => {
  it('should bring a tunnel up that carries traffic both ways, and remove it on down()', async () => {
    const stateDir = join(workDir, 'device');
    const driver = await driverFor(stateDir);
    const keyFile = join(stateDir, 'wireguard-private.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(driver.publicKey()).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    await inNs(SERVER_NS, 'wg', [
      'set',
      SERVER_IF,
      'peer',
      driver.publicKey(),
      'allowed-ips',
      `${DEVICE_TUNNEL}/32`,
    ]);

    await expect(driver.up(profile())).resolves.toEqual({ ipAddress: DEVICE_TUNNEL });
    expect(driver.status()).toEqual({ up: true, ipAddress: DEVICE_TUNNEL });
    expect(await ping(DEVICE_NS, SERVER_TUNNEL)).toBe(true);
    expect(await ping(SERVER_NS, DEVICE_TUNNEL)).toBe(true);

    await driver.down();
    expect(driver.status()).toEqual({ up: false, ipAddress: DISCONNECTED_IP });
    expect(await linkExists(DEVICE_NS, DEVICE_IF)).toBe(false);
    expect(await ping(SERVER_NS, DEVICE_TUNNEL)).toBe(false);
    await expect(driver.down()).resolves.toBeUndefined();
  }, 60_000);

  it('should keep its key pair across restarts and remove a tunnel a previous run left behind', async () => {
    const stateDir = join(workDir, 'device');
    const first = await driverFor(stateDir);
    await first.up(profile());
    // A new process (e.g. after a crash) starts from a clean, truthful "idle".
    const second = await driverFor(stateDir);
    expect(second.publicKey()).toBe(first.publicKey());
    expect(await linkExists(DEVICE_NS, DEVICE_IF)).toBe(false);
    await expect(second.up(profile())).resolves.toEqual({ ipAddress: DEVICE_TUNNEL });
    await second.down();
  }, 60_000);

  it('should fail with the handshake step code and leave no interface when the server does not answer', async () => {
    const driver = await driverFor(join(workDir, 'device'), 1500);
    const error = await driver.up(profile({ serverEndpoint: `${SERVER_UNDERLAY}:${PORT + 1}` })).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(VpnDriverError);
    expect((error as VpnDriverError).statusCode).toBe(StatusCodes.HANDSHAKE_TIMEOUT);
    expect(driver.status().up).toBe(false);
    expect(await linkExists(DEVICE_NS, DEVICE_IF)).toBe(false);
  }, 30_000);
});
