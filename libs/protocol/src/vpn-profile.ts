// The VPN profile the cloud sends as the body of a connect command: JSON, UTF-8. The agent turns
// it into a WireGuard configuration, so every field is checked before it gets near `wg` or `ip`.
import { isCidr, isIpAddress, isIpv4Cidr } from './ip-address';

export interface VpnProfile {
  type: 'wireguard';
  /** The device's tunnel address with the subnet's prefix, e.g. `10.200.0.7/16`. */
  tunnelAddress: string;
  /**
   * The gateway's `host:port`, `a.b.c.d:port` or `[ipv6]:port`. Present together with
   * serverPublicKey for a device with a WireGuard key; a keyless device (simulated driver) gets
   * neither, since no gateway carries a tunnel for it.
   */
  serverEndpoint?: string;
  /** Base64 of the gateway's 32-byte Curve25519 public key (44 characters). */
  serverPublicKey?: string;
  /** The gateway's own address inside the device's subnet (its first host), e.g. `10.200.0.1`. */
  gatewayAddress?: string;
  /** Networks routed through the tunnel (CIDRs). */
  allowedIps: string[];
  /** DNS server addresses; may be empty. */
  dns: string[];
  /** Persistent keepalive in seconds; 0 disables it. */
  keepalive: number;
}

export class VpnProfileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VpnProfileError';
  }
}

/** Bounds on list sizes so a hostile profile cannot make the agent build a huge configuration. */
const MAX_ALLOWED_IPS = 256;
const MAX_DNS_SERVERS = 16;
const MAX_PROFILE_BYTES = 64 * 1024;

/** Validates, then serialises with a fixed key order. Throws VpnProfileError on an invalid profile. */
export function encodeVpnProfile(p: VpnProfile): Buffer {
  const profile = validateProfile(p);
  return Buffer.from(JSON.stringify(profile), 'utf8');
}

/**
 * Parses and validates a connect body. Keys other than the profile's are ignored, so the cloud can
 * add optional keys without breaking agents already in the field; known keys are strictly checked.
 */
export function parseVpnProfile(body: Buffer | Uint8Array | undefined): VpnProfile {
  if (body === undefined || body.length === 0) throw new VpnProfileError('missing VPN profile');
  if (body.length > MAX_PROFILE_BYTES) throw new VpnProfileError('VPN profile is larger than 64 KiB');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    throw new VpnProfileError('VPN profile is not valid JSON');
  }
  return validateProfile(json);
}

export function isWireGuardKey(value: unknown): value is string {
  // Canonical base64 only: re-encoding must give back the same text, so padding tricks and
  // non-zero trailing bits (two spellings of one key) are refused.
  return (
    typeof value === 'string' &&
    /^[A-Za-z0-9+/]{43}=$/.test(value) &&
    Buffer.from(value, 'base64').toString('base64') === value
  );
}

/** `host:port` with a DNS name, an IPv4 address or a bracketed IPv6 address. */
export function isEndpoint(value: string): boolean {
  const colon = value.lastIndexOf(':');
  if (colon <= 0 || !/^[1-9][0-9]{0,4}$/.test(value.slice(colon + 1))) return false;
  if (Number(value.slice(colon + 1)) > 65535) return false;
  const host = value.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) {
    const inner = host.slice(1, -1);
    return inner.includes(':') && isIpAddress(inner);
  }
  return isIpAddress(host) ? !host.includes(':') : isHostname(host);
}

function isHostname(host: string): boolean {
  // RFC 1123 labels; a name made only of digits and dots would be a malformed IPv4 address.
  return (
    host.length <= 253 &&
    /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$/.test(host) &&
    !/^[0-9.]+$/.test(host)
  );
}

function validateProfile(input: unknown): VpnProfile {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new VpnProfileError('VPN profile must be a JSON object');
  }
  const p = input as Record<string, unknown>;
  if (p.type !== 'wireguard') {
    throw new VpnProfileError(`unsupported VPN type ${show(p.type)}, expected "wireguard"`);
  }
  const tunnelAddress = requireString(p, 'tunnelAddress');
  if (!isIpv4Cidr(tunnelAddress) || tunnelAddress.endsWith('/0')) {
    throw new VpnProfileError(`tunnelAddress must be an IPv4 address with prefix, like 10.200.0.7/16`);
  }
  const hasServer = p.serverEndpoint !== undefined || p.serverPublicKey !== undefined;
  if (hasServer) {
    if (typeof p.serverEndpoint !== 'string' || !isEndpoint(p.serverEndpoint)) {
      throw new VpnProfileError('serverEndpoint must be host:port with a port from 1 to 65535');
    }
    if (!isWireGuardKey(p.serverPublicKey)) {
      throw new VpnProfileError('serverPublicKey must be the base64 of a 32-byte key (44 characters)');
    }
  }
  if (
    p.gatewayAddress !== undefined &&
    (typeof p.gatewayAddress !== 'string' || !isIpAddress(p.gatewayAddress))
  ) {
    throw new VpnProfileError('gatewayAddress must be an IP address');
  }
  const allowedIps = requireList(p, 'allowedIps', MAX_ALLOWED_IPS, isCidr, 'a CIDR like 10.200.0.0/16');
  if (allowedIps.length === 0) throw new VpnProfileError('allowedIps must not be empty');
  const dns = requireList(p, 'dns', MAX_DNS_SERVERS, isIpAddress, 'an IP address');
  const keepalive = p.keepalive;
  if (typeof keepalive !== 'number' || !Number.isInteger(keepalive) || keepalive < 0 || keepalive > 65535) {
    throw new VpnProfileError('keepalive must be an integer from 0 to 65535');
  }
  return {
    type: 'wireguard',
    tunnelAddress,
    ...(hasServer
      ? { serverEndpoint: p.serverEndpoint as string, serverPublicKey: p.serverPublicKey as string }
      : {}),
    ...(p.gatewayAddress !== undefined ? { gatewayAddress: p.gatewayAddress } : {}),
    allowedIps,
    dns,
    keepalive,
  };
}

function requireString(p: Record<string, unknown>, key: string): string {
  const value = p[key];
  if (typeof value !== 'string') throw new VpnProfileError(`${key} must be a string`);
  return value;
}

function requireList(
  p: Record<string, unknown>,
  key: string,
  max: number,
  isValid: (item: string) => boolean,
  expected: string,
): string[] {
  const value = p[key];
  if (!Array.isArray(value)) throw new VpnProfileError(`${key} must be an array`);
  if (value.length > max) throw new VpnProfileError(`${key} has more than ${max} entries`);
  return value.map((item: unknown, index) => {
    if (typeof item !== 'string' || !isValid(item)) {
      throw new VpnProfileError(`${key}[${index}] must be ${expected}, got ${show(item)}`);
    }
    return item;
  });
}

/** A bounded rendering of an offending value: error messages end up in replies and logs. */
function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
