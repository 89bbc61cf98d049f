// Address syntax checks shared by status reports and VPN profiles. Zone ids (`fe80::1%eth0`) are
// refused: they name an interface of the sender and mean nothing to the receiver.
import { isIP, isIPv4 } from 'node:net';

/** Longest textual IPv6 address (with an embedded IPv4 tail). */
export const MAX_IP_ADDRESS_LENGTH = 45;

export function isIpAddress(value: string): boolean {
  return value.length <= MAX_IP_ADDRESS_LENGTH && !value.includes('%') && isIP(value) !== 0;
}

export function isIpv4Cidr(value: string): boolean {
  const slash = value.indexOf('/');
  if (slash < 0) return false;
  return isIPv4(value.slice(0, slash)) && isPrefixLength(value.slice(slash + 1), 32);
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
