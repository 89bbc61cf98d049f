import type { VpnProfile } from '@app/protocol';

/** The IXON-style three-digit code of the step that failed, e.g. '710' interface setup. */
export type StepCode = string;

/** A failure the cloud can act on: the message goes into `response.exception.message`, the code into `vpn.status_code`. */
export class VpnDriverError extends Error {
  override readonly name = 'VpnDriverError';

  constructor(
    readonly statusCode: StepCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface TunnelState {
  up: boolean;
  /** The tunnel address without prefix length; DISCONNECTED_IP when down. */
  ipAddress: string;
}

/**
 * Brings one tunnel up or down. The agent calls it from one command at a time, so
 * implementations need not guard against concurrent up/down calls.
 */
export interface VpnDriver {
  readonly name: string;
  /** Announced in BIRTH as `vpn.public_key`; undefined for drivers without a key pair. */
  publicKey(): string | undefined;
  /** Resolves once traffic can flow; rejects with a VpnDriverError. Replaces a tunnel that is already up. */
  up(profile: VpnProfile): Promise<{ ipAddress: string }>;
  /** Idempotent: taking down a tunnel that is not up succeeds. */
  down(): Promise<void>;
  status(): TunnelState;
}

/** The IP part of a CIDR tunnel address: '10.200.0.7/16' → '10.200.0.7'. */
export function addressOf(cidr: string): string {
  const slash = cidr.indexOf('/');
  return slash < 0 ? cidr : cidr.slice(0, slash);
}
