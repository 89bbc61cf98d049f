// One WireGuard interface with one peer, driven through the userspace wireguard-go with `wg` and
// `ip` (optionally inside a network namespace): shared by the device agent's WireGuard driver and
// the engineer's VPN client, which map its failures to their own status codes.
import { Logger } from './logger';
import { RunOptions, SystemCommandError, runSystemCommand } from './system-command';

/**
 * Which part of the tunnel failed, so that each caller can pick its own status code:
 * `setup` a wireguard-go/wg/ip step, `endpoint` the peer's endpoint (e.g. a name that does not
 * resolve), `handshake` no handshake in time, `teardown` the interface could not be removed.
 */
export type TunnelFailure = 'setup' | 'endpoint' | 'handshake' | 'teardown';

export class WireguardTunnelError extends Error {
  override readonly name = 'WireguardTunnelError';

  constructor(
    readonly failure: TunnelFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface TunnelSpec {
  /** Handed to `wg set … private-key`, so the key itself never appears in argv. */
  privateKeyFile: string;
  /** The interface's own address with prefix length, e.g. `10.200.0.7/16` or `10.208.0.5/32`. */
  address: string;
  peer: {
    publicKey: string;
    /** `host:port`; a name is resolved by `wg set`. */
    endpoint: string;
    allowedIps: readonly string[];
    /** Persistent keepalive in seconds, 0 = off. */
    keepalive: number;
  };
  /** Networks routed into the interface (full-tunnel defaults are skipped). */
  routes: readonly string[];
}

/** Linux interface names: at most 15 bytes (IFNAMSIZ - 1), no `/`, `:` or blanks. */
export const INTERFACE_NAME_PATTERN = /^[A-Za-z0-9_=+-][A-Za-z0-9_=+.-]{0,14}$/;

const HANDSHAKE_POLL_MS = 100;
/** Routes we do not install: a full tunnel needs policy routing (as wg-quick does) to keep the endpoint reachable. */
const DEFAULT_ROUTES = new Set(['0.0.0.0/0', '::/0']);

/**
 * The interface exists from `up()` until `remove()`; deleting it also ends its wireguard-go
 * process. `up()` does not clean up after a failed step: the caller removes the interface (it
 * may also have failed later, e.g. waiting for the handshake), and `remove()` of a missing
 * interface succeeds.
 */
export class WireguardTunnel {
  constructor(
    readonly interfaceName: string,
    readonly netns: string | undefined,
    private readonly logger: Logger,
  ) {}

  async up(spec: TunnelSpec): Promise<void> {
    const ifname = this.interfaceName;
    const { peer } = spec;
    await this.step('wireguard-go', [ifname]);
    await this.step('wg', [
      'set',
      ifname,
      'private-key',
      spec.privateKeyFile,
      'peer',
      peer.publicKey,
      'endpoint',
      peer.endpoint,
      'allowed-ips',
      peer.allowedIps.join(','),
      'persistent-keepalive',
      peer.keepalive > 0 ? String(peer.keepalive) : 'off',
    ]);
    await this.step('ip', ['address', 'add', spec.address, 'dev', ifname]);
    await this.step('ip', ['link', 'set', ifname, 'up']);
    for (const cidr of spec.routes) {
      if (DEFAULT_ROUTES.has(cidr)) {
        this.logger.warn({ cidr }, 'full-tunnel route not installed');
        continue;
      }
      await this.step('ip', ['route', 'replace', cidr, 'dev', ifname]);
    }
  }

  /**
   * Polls `wg show latest-handshakes` until the peer has completed one. Only meaningful with a
   * keepalive: without one nothing is sent (so no handshake starts) until traffic flows.
   * A failing `wg show` is rethrown as it is: it is not the peer's fault.
   */
  async awaitHandshake(endpoint: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      signal?.throwIfAborted();
      if ((await this.latestHandshake()) > 0) return;
      if (Date.now() >= deadline) {
        throw new WireguardTunnelError('handshake', `no handshake with ${endpoint} within ${timeoutMs} ms`);
      }
      await pause(HANDSHAKE_POLL_MS, signal);
    }
  }

  /** Epoch seconds of the latest handshake with any peer; 0 before the first. */
  async latestHandshake(): Promise<number> {
    const out = await this.run('wg', ['show', this.interfaceName, 'latest-handshakes']);
    const epochs = out
      .split('\n')
      .map((line) => Number(line.split('\t')[1]))
      .filter((n) => Number.isFinite(n));
    return epochs.length === 0 ? 0 : Math.max(...epochs);
  }

  async exists(): Promise<boolean> {
    try {
      await this.run('ip', ['link', 'show', 'dev', this.interfaceName]);
      return true;
    } catch (err) {
      if (isMissingDevice(err)) return false;
      throw err;
    }
  }

  /** Deleting the interface also ends its wireguard-go process. A missing interface is fine. */
  async remove(): Promise<void> {
    try {
      await this.run('ip', ['link', 'del', 'dev', this.interfaceName]);
    } catch (err) {
      if (isMissingDevice(err)) return;
      const message = err instanceof Error ? err.message : String(err);
      throw new WireguardTunnelError('teardown', message, { cause: err });
    }
  }

  /** Runs a tool in the tunnel's network namespace (or the caller's own). */
  run(file: string, args: readonly string[], options?: RunOptions): Promise<string> {
    return this.netns === undefined
      ? runSystemCommand(file, args, options)
      : runSystemCommand('ip', ['netns', 'exec', this.netns, file, ...args], options);
  }

  private async step(file: string, args: string[]): Promise<void> {
    try {
      await this.run(file, args);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // `wg set` resolves the endpoint host: a name that does not resolve is the peer's step, not ours.
      const endpoint = file === 'wg' && /resolve|Name or service|endpoint/i.test(message);
      throw new WireguardTunnelError(endpoint ? 'endpoint' : 'setup', message, { cause: err });
    }
  }
}

function isMissingDevice(err: unknown): boolean {
  return err instanceof SystemCommandError && /Cannot find device|does not exist/i.test(err.stderr);
}

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
