// The device agent's WireGuard driver: the profile from the cloud becomes one tunnel (libs/edge
// WireguardTunnel), whose failures get the agent's step codes.
import { DISCONNECTED_IP, StatusCodes, VpnProfile } from '@app/protocol';

import type { WireguardDriverConfig } from '../config';
import { addressOf, TunnelState, VpnDriver, VpnDriverError } from './vpn-driver';
import {
  Logger,
  TunnelFailure,
  WireguardKeys,
  WireguardTunnel,
  WireguardTunnelError,
  errorFields,
  loadOrCreateKeys,
} from '@app/edge';

/** The agent's step codes for the parts of the shared tunnel code that can fail. */
const FAILURE_CODES: Readonly<Record<TunnelFailure, string>> = {
  setup: StatusCodes.INTERFACE_SETUP_FAILED,
  endpoint: StatusCodes.PEER_UNREACHABLE,
  handshake: StatusCodes.HANDSHAKE_TIMEOUT,
  teardown: StatusCodes.TEARDOWN_FAILED,
};

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
    private readonly tunnel: WireguardTunnel,
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
    const child = logger.child({ interface: config.interfaceName });
    const tunnel = new WireguardTunnel(config.interfaceName, config.netns, child);
    await tunnel.remove();
    return new WireguardDriver(config, keys, tunnel, child);
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
    await this.down();
    try {
      await this.tunnel.up({
        privateKeyFile: this.keys.privateKeyFile,
        address: profile.tunnelAddress,
        peer: {
          publicKey: serverPublicKey,
          endpoint: serverEndpoint,
          allowedIps: profile.allowedIps,
          keepalive: profile.keepalive,
        },
        routes: profile.allowedIps,
      });
      if (profile.dns.length > 0)
        this.logger.info({ dns: profile.dns }, 'DNS servers are not applied by this driver');
      // The first keepalive starts a handshake; without keepalive nothing is sent until traffic flows.
      if (profile.keepalive > 0 && this.config.handshakeTimeoutMs > 0)
        await this.tunnel.awaitHandshake(serverEndpoint, this.config.handshakeTimeoutMs);
    } catch (err) {
      await this.tunnel
        .remove()
        .catch((cleanup: unknown) =>
          this.logger.error({ ...errorFields(cleanup) }, 'cleanup after a failed connect failed'),
        );
      throw toDriverError(err);
    }
    this.state = { up: true, ipAddress: addressOf(profile.tunnelAddress) };
    this.logger.info({ ipAddress: this.state.ipAddress, endpoint: serverEndpoint }, 'tunnel up');
    return { ipAddress: this.state.ipAddress };
  }

  async down(): Promise<void> {
    try {
      await this.tunnel.remove();
    } catch (err) {
      throw toDriverError(err);
    }
    if (this.state.up) this.logger.info({}, 'tunnel down');
    this.state = { up: false, ipAddress: DISCONNECTED_IP };
  }
}

/** Tunnel failures get their step code; anything else (e.g. `wg show` failing) stays as it is. */
function toDriverError(err: unknown): unknown {
  if (!(err instanceof WireguardTunnelError)) return err;
  return new VpnDriverError(FAILURE_CODES[err.failure], err.message, { cause: err.cause ?? err });
}
