// The engineer's end of the tunnel: the session from the cloud turned into one WireGuard interface
// (the shared libs/edge tunnel code), plus a ping to the device through it.
import type { VpnSession } from './session';
import { Logger, SystemCommandError, WireguardKeys, WireguardTunnel } from '@app/edge';

/** What the connect flow needs of a tunnel; the unit tests give it a fake. */
export interface TunnelPort {
  readonly interfaceName: string;
  /** Replaces nothing: the caller removes a leftover interface first. */
  up(session: VpnSession): Promise<void>;
  awaitHandshake(session: VpnSession, timeoutMs: number, signal: AbortSignal): Promise<void>;
  /** One echo request; false when it got no answer. */
  ping(address: string): Promise<boolean>;
  exists(): Promise<boolean>;
  /** A missing interface is fine. */
  remove(): Promise<void>;
}

export class ClientTunnel implements TunnelPort {
  private readonly wg: WireguardTunnel;

  constructor(
    readonly interfaceName: string,
    netns: string | undefined,
    private readonly keys: WireguardKeys,
    logger: Logger,
  ) {
    this.wg = new WireguardTunnel(interfaceName, netns, logger);
  }

  up(session: VpnSession): Promise<void> {
    return this.wg.up({
      privateKeyFile: this.keys.privateKeyFile,
      // A host address: the networks behind the tunnel are reached through the routes below.
      address: `${session.tunnelAddress}/32`,
      peer: {
        publicKey: session.serverPublicKey,
        endpoint: session.serverEndpoint,
        allowedIps: session.allowedIps,
        keepalive: session.keepalive,
      },
      routes: session.allowedIps,
    });
  }

  awaitHandshake(session: VpnSession, timeoutMs: number, signal: AbortSignal): Promise<void> {
    return this.wg.awaitHandshake(session.serverEndpoint, timeoutMs, signal);
  }

  async ping(address: string): Promise<boolean> {
    try {
      // Bound to the interface, so an answer proves the path through the tunnel, not another route.
      await this.wg.run('ping', ['-n', '-c', '1', '-W', '1', '-I', this.interfaceName, address], {
        timeoutMs: 5000,
      });
      return true;
    } catch (err) {
      // Exit code 1: no reply. Anything else (ping missing, bad address) is not the device's fault.
      if (err instanceof SystemCommandError && err.exitCode === 1) return false;
      throw err;
    }
  }

  exists(): Promise<boolean> {
    return this.wg.exists();
  }

  remove(): Promise<void> {
    return this.wg.remove();
  }
}
