/**
 * Network namespaces for tests that carry real packets: an underlay namespace holding a bridge
 * (198.18.0.0/24, from the benchmarking range), hosts joined to it by veth pairs, WireGuard
 * interfaces (userspace wireguard-go) inside them. Names carry a random suffix: interface names
 * are machine-wide in effect (wireguard-go's control socket is /var/run/wireguard/<name>.sock).
 * destroy() removes every interface, socket and namespace it made, also after a failed test.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSystemCommand } from '@app/edge';

export const inNs = (ns: string, file: string, args: string[], input?: string): Promise<string> =>
  runSystemCommand('ip', ['netns', 'exec', ns, file, ...args], input === undefined ? {} : { input });

/** True when `count` pings from `ns` to `address` got an answer (each waits at most 1 s). */
export async function ping(ns: string, address: string, count = 1): Promise<boolean> {
  return inNs(ns, 'ping', ['-n', '-c', String(count), '-i', '0.2', '-W', '1', address]).then(
    () => true,
    () => false,
  );
}

/** Pings until one answer comes, or fails after `timeoutMs` (tunnels take a handshake to come up). */
export async function pingEventually(ns: string, address: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ping(ns, address))) {
    if (Date.now() >= deadline)
      throw new Error(`no ping answer from ${address} in ${ns} within ${timeoutMs} ms`);
  }
}

/**
 * Asserts that `address` does not answer from `ns`: three pings, each waiting 1 s, a bounded
 * wait long enough for a tunnel that works to answer (it answers in milliseconds here).
 */
export async function unreachable(ns: string, address: string): Promise<boolean> {
  return !(await ping(ns, address, 3));
}

/** The peers (public keys) of a WireGuard interface. */
export async function wgPeers(ns: string, ifname: string): Promise<string[]> {
  const out = await inNs(ns, 'wg', ['show', ifname, 'peers']);
  return out.split('\n').filter((l) => l.trim() !== '');
}

export function wgKeyPair(): { privateKey: string; publicKey: string } {
  const privateKey = execFileSync('wg', ['genkey']).toString().trim();
  const publicKey = execFileSync('wg', ['pubkey'], { input: `${privateKey}\n` })
    .toString()
    .trim();
  return { privateKey, publicKey };
}

export class Underlay {
  readonly suffix = randomBytes(3).toString('hex');
  readonly workDir = mkdtempSync(join(tmpdir(), 'vpn-netns-'));
  private readonly namespaces: string[] = [];
  private readonly interfaces: Array<[string, string]> = [];
  private readonly ns: string;
  private readonly bridge: string;
  private hosts = 0;

  private constructor() {
    this.ns = `ul-${this.suffix}`;
    this.bridge = `br${this.suffix}`;
  }

  /** The underlay namespace with its bridge, up. */
  static async create(): Promise<Underlay> {
    const u = new Underlay();
    await u.addNamespace(u.ns);
    await inNs(u.ns, 'ip', ['link', 'add', u.bridge, 'type', 'bridge']);
    await inNs(u.ns, 'ip', ['link', 'set', u.bridge, 'up']);
    return u;
  }

  /** A unique name (≤ 15 chars) for an interface or namespace: `prefix` + the run's suffix. */
  name(prefix: string): string {
    return `${prefix}${this.suffix}`.slice(0, 15);
  }

  /** A new namespace joined to the bridge with `address`/24; returns its name. */
  async addHost(tag: string, address: string): Promise<string> {
    const ns = `${tag}-${this.suffix}`;
    await this.addNamespace(ns);
    const n = ++this.hosts;
    const outer = `u${n}${this.suffix}`;
    const inner = `e${n}${this.suffix}`;
    await runSystemCommand('ip', [
      'link',
      'add',
      outer,
      'netns',
      this.ns,
      'type',
      'veth',
      'peer',
      'name',
      inner,
      'netns',
      ns,
    ]);
    await inNs(this.ns, 'ip', ['link', 'set', outer, 'master', this.bridge, 'up']);
    await inNs(ns, 'ip', ['address', 'add', `${address}/24`, 'dev', inner]);
    await inNs(ns, 'ip', ['link', 'set', inner, 'up']);
    return ns;
  }

  /** Remembers an interface (made by a test or a process under test) for destroy(). */
  track(ns: string, ifname: string): void {
    this.interfaces.push([ns, ifname]);
  }

  /**
   * A plain WireGuard interface configured by hand (`wireguard-go` + `wg` + `ip`), as an engineer
   * would with the values the cloud hands out.
   */
  async wgInterface(o: {
    ns: string;
    ifname: string;
    privateKey: string;
    address: string;
    peerPublicKey: string;
    endpoint: string;
    allowedIps: string[];
    keepalive?: number;
  }): Promise<void> {
    const keyFile = join(this.workDir, `${o.ifname}.key`);
    writeFileSync(keyFile, `${o.privateKey}\n`, { mode: 0o600 });
    this.track(o.ns, o.ifname);
    await inNs(o.ns, 'wireguard-go', [o.ifname]);
    await inNs(o.ns, 'wg', [
      'set',
      o.ifname,
      'private-key',
      keyFile,
      'peer',
      o.peerPublicKey,
      'endpoint',
      o.endpoint,
      'allowed-ips',
      o.allowedIps.join(','),
      'persistent-keepalive',
      String(o.keepalive ?? 1),
    ]);
    await inNs(o.ns, 'ip', ['address', 'add', `${o.address}/32`, 'dev', o.ifname]);
    await inNs(o.ns, 'ip', ['link', 'set', o.ifname, 'up']);
    for (const cidr of o.allowedIps) await inNs(o.ns, 'ip', ['route', 'replace', cidr, 'dev', o.ifname]);
  }

  /**
   * Widens what a host sends into its tunnel to the whole tunnel range 100.64.0.0/10 (AllowedIPs
   * and route), so that whatever it cannot reach is refused by the gateway's rules, not by its own
   * configuration.
   */
  async widen(ns: string, ifname: string, peerPublicKey: string): Promise<void> {
    await inNs(ns, 'wg', ['set', ifname, 'peer', peerPublicKey, 'allowed-ips', '100.64.0.0/10']);
    await inNs(ns, 'ip', ['route', 'replace', '100.64.0.0/10', 'dev', ifname]);
  }

  async removeInterface(ns: string, ifname: string): Promise<void> {
    await inNs(ns, 'ip', ['link', 'del', 'dev', ifname]).catch(() => undefined);
    rmSync(`/var/run/wireguard/${ifname}.sock`, { force: true });
  }

  async destroy(): Promise<void> {
    for (const [ns, ifname] of this.interfaces.reverse()) await this.removeInterface(ns, ifname);
    // Deleting a namespace removes its veths and any interface left in it (ending its wireguard-go).
    for (const ns of this.namespaces.reverse()) {
      await runSystemCommand('ip', ['netns', 'del', ns]).catch(() => undefined);
    }
    rmSync(this.workDir, { recursive: true, force: true });
  }

  private async addNamespace(ns: string): Promise<void> {
    await runSystemCommand('ip', ['netns', 'add', ns]);
    this.namespaces.push(ns);
    await inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
  }
}
