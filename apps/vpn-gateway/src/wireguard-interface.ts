// The gateway's one WireGuard interface (userspace wireguard-go), configured through its UAPI
// socket, with its addresses (`ip`) and its firewall table (`nft`): the Dataplane of PeerSync.
import { readFile } from 'node:fs/promises';

import { EndpointStore } from './endpoint-store';
import { Firewall } from './firewall';
import type { PairDelta } from './pair-index';
import type { Dataplane, InterfacePeer } from './peer-sync';
import { ToolRunner, toolRunner } from './system-tools';
import {
  Logger,
  SystemCommandError,
  UapiDevice,
  UapiError,
  UapiPeer,
  WireguardUapi,
  errorFields,
  keyToHex,
  uapiSocketPath,
} from '@app/edge';

export interface WireguardInterfaceOptions {
  interfaceName: string;
  netns: string | undefined;
  listenPort: number;
  /** persistent_keepalive_interval for a new peer that gets a stored endpoint. */
  keepaliveSec: number;
  /** The private key stays in this file; it is read only to hand it to wireguard-go. */
  privateKeyFile: string;
  endpoints: EndpointStore;
  logger: Logger;
  /** How long wireguard-go may take to answer on its socket after it started. */
  startTimeoutMs?: number;
}

/** The interface could not be created, adopted or configured; the message says which step and why. */
export class GatewaySetupError extends Error {
  override readonly name = 'GatewaySetupError';
}

const EADDRINUSE = -98;
/**
 * A full sync writes every peer in one operation: ~3 s for 10,000 peers on a small busy server,
 * and wireguard-go on a slow gateway may take several times that.
 */
const UAPI_TIMEOUT_MS = 60_000;

export class WireguardInterface implements Dataplane {
  readonly name: string;
  readonly uapi: WireguardUapi;
  readonly firewall: Firewall;
  /** True when an interface of a previous run was taken over instead of created. */
  adopted = false;
  /** True when the firewall set of a previous run was kept: the first full sync rewrites it. */
  pairsStale = false;
  /** What the interface holds: key → its allowed IPs, sorted and joined, to compare in O(1). */
  private readonly held = new Map<string, string>();
  private addresses = new Set<string>();
  /** Peers this process added that have had no handshake yet → when they were added. */
  private readonly awaiting = new Map<string, number>();
  private readonly run: ToolRunner;
  private readonly logger: Logger;

  private constructor(private readonly options: WireguardInterfaceOptions) {
    this.name = options.interfaceName;
    this.logger = options.logger;
    this.run = toolRunner(options.netns);
    this.uapi = new WireguardUapi(uapiSocketPath(this.name), UAPI_TIMEOUT_MS);
    this.firewall = new Firewall(this.name, options.netns, this.run, this.logger);
  }

  /**
   * Takes over the interface a previous run left (a crash or SIGKILL keeps wireguard-go and its
   * sessions running), or starts wireguard-go for a new one; then key, port, link, forwarding,
   * firewall. A new interface that cannot be configured is removed again.
   */
  static async open(options: WireguardInterfaceOptions): Promise<WireguardInterface> {
    const wg = new WireguardInterface(options);
    let device: UapiDevice;
    if (await wg.linkExists()) {
      try {
        device = await wg.uapi.get();
      } catch (err) {
        throw new GatewaySetupError(
          `interface ${wg.name} exists but does not answer on ${wg.uapi.socketPath} (${(err as Error).message}): ` +
            `it is not a wireguard-go interface this gateway can take over; delete it (ip link del ${wg.name}) or choose another --interface`,
        );
      }
      wg.adopted = true;
      wg.logger.info({ peers: device.peers.length }, 'taking over the interface of a previous run');
    } else {
      await wg.step('starting wireguard-go', () => wg.run('wireguard-go', [wg.name]));
      device = await wg.waitForSocket();
    }
    try {
      await wg.configure(device);
    } catch (err) {
      if (!wg.adopted) await wg.remove().catch(() => undefined);
      throw err;
    }
    return wg;
  }

  get peerCount(): number {
    return this.held.size;
  }

  async replacePeers(peers: ReadonlyMap<string, InterfacePeer>): Promise<void> {
    const remove: string[] = [];
    for (const key of this.held.keys()) if (!peers.has(key)) remove.push(key);
    await this.writePeers(peers.values(), remove);
  }

  async changePeers(upsert: readonly InterfacePeer[], remove: readonly string[]): Promise<void> {
    await this.writePeers(upsert, remove);
  }

  async setAddresses(addresses: readonly string[]): Promise<void> {
    const wanted = new Set(addresses);
    const commands: string[] = [];
    for (const a of this.addresses) if (!wanted.has(a)) commands.push(`address del ${a} dev ${this.name}`);
    for (const a of wanted) if (!this.addresses.has(a)) commands.push(`address add ${a} dev ${this.name}`);
    if (commands.length === 0) return;
    try {
      await this.run('ip', ['-batch', '-'], `${commands.join('\n')}\n`);
    } catch (err) {
      this.addresses = await this.readAddresses().catch(() => this.addresses);
      throw err;
    }
    this.addresses = wanted;
    this.logger.info({ addresses: [...wanted] }, 'interface addresses set');
  }

  applyPairs(delta: PairDelta, flush: boolean): Promise<void> {
    return this.firewall.apply(delta, flush);
  }

  /** Peers with their handshakes, counters and endpoints, as wireguard-go sees them now. */
  async readPeers(): Promise<UapiPeer[]> {
    const device = await this.uapi.get();
    const now = Date.now();
    for (const peer of device.peers) {
      if (peer.lastHandshakeMs !== null) this.awaiting.delete(peer.publicKey);
      if (peer.endpoint !== null) this.options.endpoints.set(peer.publicKey, peer.endpoint);
    }
    // Entries of peers removed since (or never seen) go with the window.
    for (const [key, added] of this.awaiting)
      if (!this.held.has(key) || now - added > 3_600_000) this.awaiting.delete(key);
    return device.peers;
  }

  /** Whether a peer added in the last `windowMs` still waits for its first handshake. */
  awaitingFirstHandshake(windowMs: number, now = Date.now()): boolean {
    for (const added of this.awaiting.values()) if (now - added <= windowMs) return true;
    return false;
  }

  /** Deletes the interface (which ends its wireguard-go) and the firewall table; nothing else. */
  async remove(): Promise<void> {
    const failures: string[] = [];
    try {
      await this.run('ip', ['link', 'del', 'dev', this.name]);
    } catch (err) {
      if (!(err instanceof SystemCommandError && /Cannot find device|does not exist/i.test(err.stderr))) {
        failures.push((err as Error).message);
      }
    }
    // The table goes even when the interface would not: its rules name only this interface.
    await this.firewall.remove().catch((err: unknown) => failures.push((err as Error).message));
    if (failures.length > 0) throw new GatewaySetupError(`removing ${this.name}: ${failures.join('; ')}`);
  }

  private async writePeers(upsert: Iterable<InterfacePeer>, remove: readonly string[]): Promise<void> {
    const { lines, removed, written } = peerLines(
      this.held,
      upsert,
      remove,
      (key) => this.options.endpoints.get(key),
      this.options.keepaliveSec,
    );
    if (lines.length === 0) return;
    try {
      await this.uapi.set(lines);
    } catch (err) {
      // wireguard-go applied the lines before the bad one: learn what it holds now.
      await this.reread().catch((e: unknown) =>
        this.logger.error({ ...errorFields(e) }, 'interface re-read failed'),
      );
      throw err;
    }
    const now = Date.now();
    for (const key of removed) {
      this.held.delete(key);
      this.awaiting.delete(key);
      this.options.endpoints.delete(key);
    }
    let added = 0;
    for (const [key, ips, isNew] of written) {
      this.held.set(key, ips);
      if (isNew) {
        this.awaiting.set(key, now);
        added++;
      }
    }
    this.logger.debug(
      { added, changed: written.length - added, removed: removed.length, peers: this.held.size },
      'interface peers written',
    );
  }

  private async configure(device: UapiDevice): Promise<void> {
    for (const peer of device.peers) this.held.set(peer.publicKey, canonical(peer.allowedIps));
    const privateKey = (await readFile(this.options.privateKeyFile, 'utf8')).trim();
    const lines: string[] = [];
    if (device.privateKey !== privateKey) lines.push(`private_key=${keyToHex(privateKey)}`);
    if (device.listenPort !== this.options.listenPort) lines.push(`listen_port=${this.options.listenPort}`);
    if (lines.length > 0) {
      try {
        await this.uapi.set(lines);
      } catch (err) {
        const inUse = err instanceof UapiError && err.errno === EADDRINUSE;
        throw new GatewaySetupError(
          inUse
            ? `UDP port ${this.options.listenPort} is already in use: choose another --listen-port`
            : `configuring ${this.name}: ${(err as Error).message}`,
          { cause: err },
        );
      }
    }
    await this.step('bringing the interface up', () =>
      this.run('ip', ['link', 'set', 'dev', this.name, 'up']),
    );
    await this.step('enabling IPv4 forwarding', () =>
      this.run('sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']),
    );
    this.addresses = await this.readAddresses();
    if (this.adopted) {
      this.pairsStale = await this.step('taking over the firewall table', () => this.firewall.adopt());
    } else {
      await this.step('creating the firewall table', () => this.firewall.create());
    }
  }

  /**
   * wireguard-go's parent process returns once the socket listens; polling covers an implementation
   * that returns earlier. A socket that never answers from here (a process in another mount
   * namespace than wireguard-go's) fails the start with that reason.
   */
  private async waitForSocket(): Promise<UapiDevice> {
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 5000);
    for (;;) {
      try {
        return await this.uapi.get();
      } catch (err) {
        if (Date.now() >= deadline) {
          await this.remove().catch(() => undefined);
          throw new GatewaySetupError(
            `wireguard-go started ${this.name} but its control socket ${this.uapi.socketPath} does not answer ` +
              `from this process (${(err as Error).message}); the gateway must see the same /var/run as wireguard-go`,
            { cause: err },
          );
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  private async reread(): Promise<void> {
    const device = await this.uapi.get();
    this.held.clear();
    for (const peer of device.peers) this.held.set(peer.publicKey, canonical(peer.allowedIps));
  }

  private async linkExists(): Promise<boolean> {
    try {
      await this.run('ip', ['link', 'show', 'dev', this.name]);
      return true;
    } catch (err) {
      if (err instanceof SystemCommandError && /does not exist|Cannot find device/i.test(err.stderr))
        return false;
      throw new GatewaySetupError(`looking for interface ${this.name}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  private async readAddresses(): Promise<Set<string>> {
    const out = await this.run('ip', ['-j', '-4', 'address', 'show', 'dev', this.name]);
    const links = JSON.parse(out) as {
      addr_info?: { family?: string; local?: string; prefixlen?: number }[];
    }[];
    const addresses = new Set<string>();
    for (const link of links) {
      for (const a of link.addr_info ?? []) {
        if (a.family === 'inet' && a.local !== undefined && a.prefixlen !== undefined) {
          addresses.add(`${a.local}/${a.prefixlen}`);
        }
      }
    }
    return addresses;
  }

  private async step<T>(what: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (err) {
      throw new GatewaySetupError(`${what} (${this.name}): ${(err as Error).message}`, { cause: err });
    }
  }
}

export interface PeerLines {
  lines: string[];
  removed: string[];
  /** [key, canonical allowed IPs, new to the interface]. */
  written: [string, string, boolean][];
}

/**
 * The UAPI lines that take the interface from `held` to the requested change: a peer whose
 * addresses it already holds gets no line, a removal of a peer it does not hold neither. A peer
 * new to the interface with a stored endpoint gets that endpoint and a persistent keepalive.
 */
export function peerLines(
  held: ReadonlyMap<string, string>,
  upsert: Iterable<InterfacePeer>,
  remove: readonly string[],
  storedEndpoint: (key: string) => string | undefined,
  keepaliveSec: number,
): PeerLines {
  const lines: string[] = [];
  const removed: string[] = [];
  const written: [string, string, boolean][] = [];
  for (const key of remove) {
    if (!held.has(key)) continue;
    lines.push(`public_key=${keyToHex(key)}`, 'remove=true');
    removed.push(key);
  }
  for (const peer of upsert) {
    const ips = canonical(peer.allowedIps);
    const current = held.get(peer.publicKey);
    if (current === ips) continue;
    lines.push(`public_key=${keyToHex(peer.publicKey)}`, 'replace_allowed_ips=true');
    for (const ip of peer.allowedIps) lines.push(`allowed_ip=${ip}`);
    const endpoint = current === undefined ? storedEndpoint(peer.publicKey) : undefined;
    if (endpoint !== undefined) {
      // With a persistent keepalive on an up interface wireguard-go sends a keepalive at once,
      // which starts the handshake: a device is back within a round trip after a gateway restart.
      lines.push(`endpoint=${endpoint}`, `persistent_keepalive_interval=${keepaliveSec}`);
    }
    written.push([peer.publicKey, ips, current === undefined]);
  }
  return { lines, removed, written };
}

function canonical(allowedIps: readonly string[]): string {
  return allowedIps.length === 1 ? allowedIps[0] : [...allowedIps].sort().join(',');
}
