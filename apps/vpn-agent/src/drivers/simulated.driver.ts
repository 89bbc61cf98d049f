import { createHash } from 'node:crypto';

import { DISCONNECTED_IP, StatusCodes, VpnProfile } from '@app/protocol';

import type { SimulatedDriverConfig } from '../config';
import { addressOf, TunnelState, VpnDriver, VpnDriverError } from './vpn-driver';

/**
 * A driver without a tunnel, for tests and load tests: "brings up" the profile's address after
 * a delay and can be told to fail at a given step.
 */
export class SimulatedDriver implements VpnDriver {
  readonly name = 'simulated';
  private state: TunnelState = { up: false, ipAddress: DISCONNECTED_IP };
  /** Cancels the up() in progress, so that down() (or shutdown) can end a connect that hangs. */
  private pending: AbortController | undefined;
  private readonly key: string;

  constructor(
    private readonly config: SimulatedDriverConfig,
    clientId: string,
  ) {
    // A well-formed, stable fake WireGuard public key, so that the cloud's key handling can be exercised.
    this.key = createHash('sha256').update(`simulated:${clientId}`).digest('base64');
  }

  publicKey(): string | undefined {
    return this.config.announceKey ? this.key : undefined;
  }

  status(): TunnelState {
    return { ...this.state };
  }

  async up(profile: VpnProfile): Promise<{ ipAddress: string }> {
    const abort = new AbortController();
    this.pending = abort;
    try {
      if (this.config.failMode === 'timeout') await never(abort.signal);
      await delay(this.config.connectDelayMs, abort.signal);
      if (this.config.failMode === 'connect') {
        this.state = { up: false, ipAddress: DISCONNECTED_IP };
        throw new VpnDriverError(
          StatusCodes.HANDSHAKE_TIMEOUT,
          `simulated failure: no handshake from ${profile.serverEndpoint}`,
        );
      }
      this.state = { up: true, ipAddress: addressOf(profile.tunnelAddress) };
      return { ipAddress: this.state.ipAddress };
    } finally {
      if (this.pending === abort) this.pending = undefined;
    }
  }

  async down(): Promise<void> {
    this.pending?.abort();
    await delay(this.config.disconnectDelayMs);
    if (this.config.failMode === 'disconnect' && this.state.up) {
      throw new VpnDriverError(StatusCodes.TEARDOWN_FAILED, 'simulated failure: tunnel could not be removed');
    }
    this.state = { up: false, ipAddress: DISCONNECTED_IP };
  }
}

function aborted(): VpnDriverError {
  return new VpnDriverError(StatusCodes.FAILED, 'connect aborted by a disconnect');
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(aborted());
    if (ms <= 0) return resolve();
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(aborted());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Settles only when aborted: the `timeout` fail mode never answers a connect on its own. */
function never(signal: AbortSignal): Promise<never> {
  return new Promise((_resolve, reject) => {
    if (signal.aborted) return reject(aborted());
    signal.addEventListener('abort', () => reject(aborted()), { once: true });
  });
}
