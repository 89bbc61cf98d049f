import { BlockList, isIP } from 'node:net';
import { lookup } from 'node:dns/promises';

/**
 * Where a webhook may be sent (docs/webhooks.md, "Private addresses"). A webhook URL is chosen
 * by a tenant but fetched by the server, so without a check it could reach the server's own
 * loopback services or the private network it runs in (SSRF). The check runs when the webhook
 * is saved and again on every attempt, on the address the connection then actually uses.
 */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, cloud metadata services
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard
  ['2001:db8::', 32],
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

/** The IPv4 address embedded in an IPv4-mapped, -compatible or NAT64 IPv6 address. */
function embeddedIpv4(v6: string): string | undefined {
  const m = /^(?:::ffff:|::|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/i.exec(v6);
  if (!m) return undefined;
  if (m[1]) return m[1];
  const hi = parseInt(m[2], 16);
  const lo = parseInt(m[3], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** True for loopback, private, link-local, unique-local, CGNAT, multicast and reserved addresses. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 4) return PRIVATE.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    if (v4 !== undefined) return isPrivateAddress(v4);
    return PRIVATE.check(address, 'ipv6');
  }
  return true;
}

/** The host of a parsed URL as a bare name or address (IPv6 without its brackets). */
export function urlHost(url: URL): string {
  return url.hostname.replace(/^\[(.*)\]$/, '$1');
}

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

export class AddressRefused extends Error {}

/**
 * The address to connect to for `host`: the literal itself, or the first address DNS gives that
 * is allowed. Throws AddressRefused when every address is private (and private ones are not
 * allowed), or the name does not resolve.
 */
export async function resolveAllowed(host: string, allowPrivate: boolean): Promise<ResolvedAddress> {
  const family = isIP(host);
  if (family) {
    if (!allowPrivate && isPrivateAddress(host)) {
      throw new AddressRefused(`${host} is a loopback, private or reserved address`);
    }
    return { address: host, family: family as 4 | 6 };
  }
  if (!allowPrivate && (host === 'localhost' || host.endsWith('.localhost'))) {
    throw new AddressRefused(`${host} is a loopback name`);
  }
  let addresses: Array<{ address: string; family: number }>;
  try {
    addresses = await lookup(host, { all: true, verbatim: true });
  } catch (err) {
    throw new AddressRefused(`${host} does not resolve (${(err as { code?: string }).code ?? 'DNS error'})`);
  }
  const usable = allowPrivate ? addresses : addresses.filter((a) => !isPrivateAddress(a.address));
  if (!usable.length) {
    throw new AddressRefused(
      addresses.length
        ? `${host} resolves only to loopback, private or reserved addresses`
        : `${host} does not resolve`,
    );
  }
  return { address: usable[0].address, family: usable[0].family === 6 ? 6 : 4 };
}
