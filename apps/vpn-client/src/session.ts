// The engineer's VPN session as the cloud hands it out (POST …/vpn/sessions): every field is
// checked here before it gets near `wg` or `ip`, and the device's address is derived from it.
import { isIPv4 } from 'node:net';

import { StatusCodes, isCidr, isEndpoint, isIpAddress, isWireGuardKey } from '@app/protocol';

import type { SessionBody } from './cloud-client';
import { StepError } from './step-codes';

export interface VpnSession {
  id: string;
  /** Authenticates the keepalive pings; never logged. */
  pingToken: string;
  /** The client's own tunnel address, without prefix. */
  tunnelAddress: string;
  serverEndpoint: string;
  serverPublicKey: string;
  allowedIps: string[];
  /** The device, reachable through the tunnel: the host of the first allowedIps entry. */
  deviceAddress: string;
  dns: string[];
  keepalive: number;
  pingIntervalSec: number;
  expiresOn: string | undefined;
}

const ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;
const TOKEN_PATTERN = /^[\x21-\x7e]{1,1024}$/;
const MAX_ALLOWED_IPS = 256;

export function parseSession(body: SessionBody): VpnSession {
  const fail = (what: string): never => {
    throw new StepError(StatusCodes.INVALID_PROFILE, `the cloud sent an invalid VPN session: ${what}`);
  };
  const { id, pingToken, tunnelAddress, serverEndpoint, serverPublicKey, allowedIps, dns, keepalive } = body;
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) fail('id is missing or malformed');
  if (typeof pingToken !== 'string' || !TOKEN_PATTERN.test(pingToken))
    fail('pingToken is missing or malformed');
  const address = typeof tunnelAddress === 'string' ? tunnelAddress.replace(/\/32$/, '') : '';
  if (!isIPv4(address)) fail('tunnelAddress must be an IPv4 address');
  if (typeof serverEndpoint !== 'string' || !isEndpoint(serverEndpoint))
    fail('serverEndpoint must be host:port');
  if (!isWireGuardKey(serverPublicKey)) fail('serverPublicKey must be a base64 WireGuard key');
  if (
    !Array.isArray(allowedIps) ||
    allowedIps.length === 0 ||
    allowedIps.length > MAX_ALLOWED_IPS ||
    !allowedIps.every((c): c is string => typeof c === 'string' && isCidr(c))
  ) {
    fail(`allowedIps must be 1 to ${MAX_ALLOWED_IPS} CIDRs`);
  }
  const dnsList = dns === undefined || dns === null ? [] : dns;
  if (
    !Array.isArray(dnsList) ||
    !dnsList.every((d): d is string => typeof d === 'string' && isIpAddress(d))
  ) {
    fail('dns must be a list of IP addresses');
  }
  if (!isIntegerIn(keepalive, 0, 65535)) fail('keepalive must be an integer from 0 to 65535');
  if (!isIntegerIn(body.pingInterval, 1, 3600))
    fail('pingInterval must be an integer from 1 to 3600 seconds');
  const cidrs = allowedIps as string[];
  const deviceAddress = hostOf(cidrs[0]);
  if (deviceAddress === undefined)
    fail(`allowedIps[0] (${cidrs[0]}) must name the device's address, not a network`);
  return {
    id: id as string,
    pingToken: pingToken as string,
    tunnelAddress: address,
    serverEndpoint: serverEndpoint as string,
    serverPublicKey: serverPublicKey as string,
    allowedIps: cidrs,
    deviceAddress: deviceAddress as string,
    dns: dnsList as string[],
    keepalive: keepalive as number,
    pingIntervalSec: body.pingInterval as number,
    expiresOn: typeof body.expiresOn === 'string' ? body.expiresOn : undefined,
  };
}

function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/**
 * The address part of a CIDR when it names a host: `10.200.0.2/32` and `10.200.0.2/24` do,
 * `10.200.0.0/24` (a network address) does not.
 */
export function hostOf(cidr: string): string | undefined {
  const [address, prefixText] = cidr.split('/');
  const prefix = Number(prefixText);
  if (!isIPv4(address)) return prefix === 128 || !/::$/.test(address) ? address : undefined;
  if (prefix >= 31) return address;
  const value = address.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
  const hostBits = 2 ** (32 - prefix);
  return value % hostBits === 0 ? undefined : address;
}
