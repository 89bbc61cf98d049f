import { DISCONNECTED_IP, StatusCodes, VpnProfile } from '@app/protocol';

import type { WireguardDriverConfig } from '../config';
import { addressOf, StepCode, TunnelState, VpnDriver, VpnDriverError } from './vpn-driver';
import {
  Logger,
  SystemCommandError,
  WireguardKeys,
  errorFields,
  loadOrCreateKeys,
  runSystemCommand,
} from '@app/edge';

const HANDSHAKE_POLL_MS = 100;
/** Routes we do not install: a full tunnel needs policy routing (as wg-quick does) to keep the endpoint reachable. */
const DEFAULT_ROUTES = new Set(['0.0.0.0/0', '::/0']);

/**
 * A real WireGuard tunnel through the userspace `wireguard-go` (the kernel module is not assumed),
 * configured with `wg` and `ip`. One interface per agent; it exists exactly while the tunnel is up.
 */
export class WireguardDriver implements VpnDriver {
  readonly name = 'wireguard';
  private state: TunnelState = { up: false, ipAddress: DISCONNECTED_IP };

  private constructor(
    private readonly config: WireguardDriverConfig,
    private readonly keys: WireguardKeys,
    private readonly logger: Logger,
  ) {}

  /** Loads (or creates) the key pair and removes an interface a crashed run left behind, so "idle" is true. */
  static async create(config: WireguardDriverConfig, logger: Logger): Promise<WireguardDriver> {
    let keys: WireguardKeys;
    try {
      keys = await loadOrCreateKeys(config.stateDir, logger);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new VpnDriverError(StatusCodes.KEY_MISSING, message, { cause: err });
    }
    const driver = new WireguardDriver(config, keys, logger.child({ interface: config.interfaceName }));
    await driver.removeInterface();
    return driver;
  }

  publicKey(): string {
    return this.keys.publicKey;
  }

  status(): TunnelState {
    return { ...this.state };
  }

  async up(profile: VpnProfile): Promise<{ ipAddress: string }> {
    if (profile.type !== 'wireguard') {
      throw new VpnDriverError(
        StatusCodes.UNSUPPORTED_VPN_TYPE,
        `VPN type "${String(profile.type)}" is not supported`,
      );
    }
    const { serverEndpoint, serverPublicKey } = profile;
    if (serverEndpoint === undefined || serverPublicKey === undefined) {
      throw new VpnDriverError(
        StatusCodes.INVALID_PROFILE,
        'the VPN profile names no gateway (serverEndpoint, serverPublicKey): the cloud has no gateway for this device',
      );
    }
    const ifname = this.config.interfaceName;
    await this.down();
    try {
      await this.step(StatusCodes.INTERFACE_SETUP_FAILED, 'wireguard-go', [ifname]);
      await this.step(StatusCodes.INTERFACE_SETUP_FAILED, 'wg', [
        'set',
        ifname,
        'private-key',
        this.keys.privateKeyFile,
        'peer',
        serverPublicKey,
        'endpoint',
        serverEndpoint,
        'allowed-ips',
        profile.allowedIps.join(','),
        'persistent-keepalive',
        profile.keepalive > 0 ? String(profile.keepalive) : 'off',
      ]);
      await this.step(StatusCodes.INTERFACE_SETUP_FAILED, 'ip', [
        'address',
        'add',
        profile.tunnelAddress,
        'dev',
        ifname,
      ]);
      await this.step(StatusCodes.INTERFACE_SETUP_FAILED, 'ip', ['link', 'set', ifname, 'up']);
      for (const cidr of profile.allowedIps) {
        if (DEFAULT_ROUTES.has(cidr)) {
          this.logger.warn({ cidr }, 'full-tunnel route not installed');
          continue;
        }
        await this.step(StatusCodes.INTERFACE_SETUP_FAILED, 'ip', ['route', 'replace', cidr, 'dev', ifname]);
      }
      if (profile.dns.length > 0)
        this.logger.info({ dns: profile.dns }, 'DNS servers are not applied by this driver');
      // The first keepalive starts a handshake; without keepalive nothing is sent until traffic flows.
      if (profile.keepalive > 0 && this.config.handshakeTimeoutMs > 0)
        await this.awaitHandshake(serverEndpoint);
    } catch (err) {
      await this.removeInterface().catch((cleanup: unknown) =>
        this.logger.error({ ...errorFields(cleanup) }, 'cleanup after a failed connect failed'),
      );
      throw err;
    }
    this.state = { up: true, ipAddress: addressOf(profile.tunnelAddress) };
    this.logger.info({ ipAddress: this.state.ipAddress, endpoint: serverEndpoint }, 'tunnel up');
    return { ipAddress: this.state.ipAddress };
  }

  async down(): Promise<void> {
    try {
      await this.removeInterface();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new VpnDriverError(StatusCodes.TEARDOWN_FAILED, message, { cause: err });
    }
    if (this.state.up) this.logger.info({}, 'tunnel down');
    this.state = { up: false, ipAddress: DISCONNECTED_IP };
  }

  /** Deleting the interface also ends its wireguard-go process. A missing interface is fine. */
  private async removeInterface(): Promise<void> {
    try {
      await this.run('ip', ['link', 'del', 'dev', this.config.interfaceName]);
    } catch (err) {
      if (err instanceof SystemCommandError && /Cannot find device|does not exist/i.test(err.stderr)) return;
      throw err;
    }
  }

  private async awaitHandshake(serverEndpoint: string): Promise<void> {
    const deadline = Date.now() + this.config.handshakeTimeoutMs;
    for (;;) {
      const out = await this.run('wg', ['show', this.config.interfaceName, 'latest-handshakes']);
      const epochs = out
        .split('\n')
        .map((line) => Number(line.split('\t')[1]))
        .filter((n) => Number.isFinite(n));
      if (epochs.some((n) => n > 0)) return;
      if (Date.now() >= deadline) {
        throw new VpnDriverError(
          StatusCodes.HANDSHAKE_TIMEOUT,
          `no handshake with ${serverEndpoint} within ${this.config.handshakeTimeoutMs} ms`,
        );
      }
      await new Promise((r) => setTimeout(r, HANDSHAKE_POLL_MS));
    }
  }

  private async step(code: StepCode, file: string, args: string[]): Promise<void> {
    try {
      await this.run(file, args);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // `wg set` resolves the endpoint host: a name that does not resolve is the peer's step, not ours.
      const peerStep = file === 'wg' && /resolve|Name or service|endpoint/i.test(message);
      throw new VpnDriverError(peerStep ? StatusCodes.PEER_UNREACHABLE : code, message, { cause: err });
    }
  }

  private run(file: string, args: readonly string[]): Promise<string> {
    const netns = this.config.netns;
    return netns === undefined
      ? runSystemCommand(file, args)
      : runSystemCommand('ip', ['netns', 'exec', netns, file, ...args]);
  }
}
