// Address syntax checks shared by status reports and VPN profiles. Zone ids (`fe80::1%eth0`) are
// refused: they name an interface of the sender and mean nothing to the receiver.
import { isIP, isIPv4 } from 'node:net';

/** Longest textual IPv6 address (with an embedded IPv4 tail). */
export const MAX_IP_ADDRESS_LENGTH = 45;

export function isIpAddress(value: string): boolean {
  return value.length <= MAX_IP_ADDRESS_LENGTH && !value.includes('%') && isIP(value) !== 0;
}

/** The prefix lengths a network may have, e.g. 8 to 30 for an account's VPN subnet. */
export interface PrefixRange {
  minPrefix?: number;
  maxPrefix?: number;
}

/**
 * IPv4 network in CIDR notation, e.g. `10.200.0.0/16`: four decimal octets without leading
 * zeros and a prefix length in `range` (default 0 to 32). The one CIDR check of the API's
 * request bodies, its configuration and the device protocol; host bits are not checked here.
 */
export function isIpv4Cidr(value: string, range: PrefixRange = {}): boolean {
  if (typeof value !== 'string') return false;
  const slash = value.indexOf('/');
  if (slash < 0) return false;
  const prefix = value.slice(slash + 1);
  return (
    isIPv4(value.slice(0, slash)) &&
    isPrefixLength(prefix, 32) &&
    Number(prefix) >= (range.minPrefix ?? 0) &&
    Number(prefix) <= (range.maxPrefix ?? 32)
  );
}

/** IPv4 or IPv6 network in CIDR notation, e.g. `10.200.0.0/16` or `fd00::/64`. */
export function isCidr(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash < 0) return false;
  const address = value.slice(0, slash);
  if (!isIpAddress(address)) return false;
  return isPrefixLength(value.slice(slash + 1), isIPv4(address) ? 32 : 128);
}

function isPrefixLength(text: string, max: number): boolean {
  // Decimal without sign or leading zeros, so `/016` or `/+8` are not silently accepted.
  return /^(0|[1-9][0-9]{0,2})$/.test(text) && Number(text) <= max;
}
