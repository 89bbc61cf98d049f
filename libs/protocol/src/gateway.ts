// The gateway protocol: what the cloud tells a VPN gateway (the desired peer map, as chunked full
// syncs and as change sets) and what the gateway reports back (its serial, per-peer handshakes and
// traffic). Bodies are JSON inside a KuraPayload's body; requests carry the Kura request metrics,
// replies `response.code` and `gateway.serial`. See docs/protocol.md, "Gateways".
import { isIpv4Cidr, isIpAddress } from './ip-address';
import { findMetric, getStringMetric, KuraMetricType, KuraPayload, metric } from './kura-payload';
import { Metrics } from './metrics';
import { MAX_EXCEPTION_MESSAGE_LENGTH } from './requests';
import { isWireGuardKey } from './vpn-profile';

/** Most peers in one sync chunk or change set: keeps a message well under the broker's packet limit. */
export const MAX_PEERS_PER_MESSAGE = 500;
/** Most entries of one peer's allow list (a site session covers at most this many devices of a gateway). */
export const MAX_ALLOW_ENTRIES = 10_000;
/** Largest gateway request or report body. */
export const MAX_GATEWAY_BODY_BYTES = 4 * 1024 * 1024;

export type GatewayPeerKind = 'device' | 'client';

/**
 * One WireGuard peer the gateway must hold. `allowedIps` are its own tunnel addresses (host routes,
 * /32). `allow` lists the public keys of peers it may exchange packets with: a pair may talk when
 * either side lists the other; everything else forwarded between peers is dropped.
 */
export interface GatewayPeer {
  publicKey: string;
  allowedIps: string[];
  kind: GatewayPeerKind;
  /** The account the peer belongs to (a device's, or the engineer's session's). */
  accountId: string;
  allow: string[];
}

/**
 * One chunk of a full sync (`EXEC/sync`). Chunks `0..n` of one serial arrive in order; the one with
 * `last: true` completes it. The gateway then holds exactly the peers of all chunks (removing every
 * other peer) and the addresses, and the serial.
 */
export interface GatewaySync {
  serial: number;
  chunk: number;
  last: boolean;
  /** The gateway's own interface addresses with prefix (first host of each subnet it serves). */
  addresses: string[];
  peers: GatewayPeer[];
}

/**
 * A change set (`EXEC/apply`) from serial `previous` to `serial`. A gateway that does not hold
 * `previous` answers 409 with the serial it holds, and the cloud sends a full sync.
 */
export interface GatewayApply {
  serial: number;
  previous: number;
  addresses: string[];
  upsert: GatewayPeer[];
  /** Public keys of peers to remove. */
  remove: string[];
}

/** A gateway's reply: `response.code` (200, 400 bad body, 409 serial gap, 500) and the serial it holds. */
export interface GatewayReply {
  code: number;
  serial: number;
  exceptionMessage?: string;
}

/** Reply code a gateway uses when a change set does not start from the serial it holds. */
export const GATEWAY_SERIAL_GAP = 409;

/** What the gateway saw of one peer. */
export interface GatewayPeerStats {
  publicKey: string;
  /** Epoch milliseconds of the latest handshake, null before the first. */
  lastHandshakeOn: number | null;
  rxBytes: number;
  txBytes: number;
}

export interface GatewayPeerReport {
  peers: GatewayPeerStats[];
}

export class GatewayMessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GatewayMessageError';
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function encodeGatewaySync(s: GatewaySync): Buffer {
  return encodeJson(checkSync(s));
}

export function parseGatewaySync(body: Uint8Array | undefined): GatewaySync {
  return checkSync(decodeJson(body));
}

export function encodeGatewayApply(a: GatewayApply): Buffer {
  return encodeJson(checkApply(a));
}

export function parseGatewayApply(body: Uint8Array | undefined): GatewayApply {
  return checkApply(decodeJson(body));
}

export function encodeGatewayPeerReport(r: GatewayPeerReport): Buffer {
  return encodeJson(checkReport(r));
}

export function parseGatewayPeerReport(body: Uint8Array | undefined): GatewayPeerReport {
  return checkReport(decodeJson(body));
}

export function buildGatewayReply(r: GatewayReply): KuraPayload {
  const metrics = [
    metric.int32(Metrics.RESPONSE_CODE, r.code),
    metric.int64(Metrics.GATEWAY_SERIAL, r.serial),
  ];
  if (r.exceptionMessage !== undefined) {
    metrics.push(metric.string(Metrics.RESPONSE_EXCEPTION_MESSAGE, r.exceptionMessage));
  }
  return { timestamp: Date.now(), metrics };
}

/** The reply, or null without an INT32 `response.code` and an INT64 `gateway.serial`. */
export function readGatewayReply(p: KuraPayload): GatewayReply | null {
  const code = findMetric(p, Metrics.RESPONSE_CODE);
  const serial = findMetric(p, Metrics.GATEWAY_SERIAL);
  if (code?.type !== KuraMetricType.INT32 || typeof code.value !== 'number') return null;
  if (serial?.type !== KuraMetricType.INT64 || !isSerial(serial.value)) return null;
  const reply: GatewayReply = { code: code.value, serial: serial.value };
  const message = getStringMetric(p, Metrics.RESPONSE_EXCEPTION_MESSAGE);
  if (message !== undefined) reply.exceptionMessage = message.slice(0, MAX_EXCEPTION_MESSAGE_LENGTH);
  return reply;
}

// ---------------------------------------------------------------------------------------------

function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

function decodeJson(body: Uint8Array | undefined): Record<string, unknown> {
  if (body === undefined || body.length === 0) throw new GatewayMessageError('missing body');
  if (body.length > MAX_GATEWAY_BODY_BYTES) throw new GatewayMessageError('body is larger than 4 MiB');
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch {
    throw new GatewayMessageError('body is not valid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new GatewayMessageError('body must be a JSON object');
  }
  return json as Record<string, unknown>;
}

function isSerial(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

function serialOf(o: Record<string, unknown>, key: string): number {
  const v = o[key];
  if (!isSerial(v)) throw new GatewayMessageError(`${key} must be a non-negative integer`);
  return v;
}

function listOf<T>(
  o: Record<string, unknown>,
  key: string,
  max: number,
  item: (v: unknown, i: number) => T,
): T[] {
  const v = o[key];
  if (!Array.isArray(v)) throw new GatewayMessageError(`${key} must be an array`);
  if (v.length > max) throw new GatewayMessageError(`${key} has more than ${max} entries`);
  return v.map(item);
}

function key(v: unknown, where: string): string {
  if (!isWireGuardKey(v)) throw new GatewayMessageError(`${where} must be a WireGuard public key`);
  return v;
}

function checkAddresses(o: Record<string, unknown>): string[] {
  return listOf(o, 'addresses', 4096, (v, i) => {
    // An interface address with its prefix: the gateway's host address inside a subnet.
    if (typeof v !== 'string' || !isIpv4Cidr(v)) {
      throw new GatewayMessageError(`addresses[${i}] must be an IPv4 address with prefix`);
    }
    return v;
  });
}

function checkPeer(v: unknown, i: number): GatewayPeer {
  const where = `peers[${i}]`;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new GatewayMessageError(`${where} must be an object`);
  }
  const p = v as Record<string, unknown>;
  if (p.kind !== 'device' && p.kind !== 'client') {
    throw new GatewayMessageError(`${where}.kind must be "device" or "client"`);
  }
  if (typeof p.accountId !== 'string' || !UUID.test(p.accountId)) {
    throw new GatewayMessageError(`${where}.accountId must be a UUID`);
  }
  const allowedIps = listOf(p, 'allowedIps', 16, (ip, j) => {
    // Host routes only: a peer owns its own tunnel address, never a range another peer lives in.
    if (typeof ip !== 'string' || !isIpv4Cidr(ip) || !ip.endsWith('/32')) {
      throw new GatewayMessageError(`${where}.allowedIps[${j}] must be an IPv4 address /32`);
    }
    return ip;
  });
  if (allowedIps.length === 0) throw new GatewayMessageError(`${where}.allowedIps must not be empty`);
  return {
    publicKey: key(p.publicKey, `${where}.publicKey`),
    allowedIps,
    kind: p.kind,
    accountId: p.accountId,
    allow: listOf(p, 'allow', MAX_ALLOW_ENTRIES, (k, j) => key(k, `${where}.allow[${j}]`)),
  };
}

function checkSync(input: GatewaySync | Record<string, unknown>): GatewaySync {
  const o = input as unknown as Record<string, unknown>;
  if (typeof o.last !== 'boolean') throw new GatewayMessageError('last must be a boolean');
  return {
    serial: serialOf(o, 'serial'),
    chunk: serialOf(o, 'chunk'),
    last: o.last,
    addresses: checkAddresses(o),
    peers: listOf(o, 'peers', MAX_PEERS_PER_MESSAGE, checkPeer),
  };
}

function checkApply(input: GatewayApply | Record<string, unknown>): GatewayApply {
  const o = input as unknown as Record<string, unknown>;
  const serial = serialOf(o, 'serial');
  const previous = serialOf(o, 'previous');
  if (previous >= serial) throw new GatewayMessageError('previous must be lower than serial');
  return {
    serial,
    previous,
    addresses: checkAddresses(o),
    upsert: listOf(o, 'upsert', MAX_PEERS_PER_MESSAGE, checkPeer),
    remove: listOf(o, 'remove', MAX_PEERS_PER_MESSAGE, (k, i) => key(k, `remove[${i}]`)),
  };
}

function checkReport(input: GatewayPeerReport | Record<string, unknown>): GatewayPeerReport {
  const o = input as unknown as Record<string, unknown>;
  return {
    peers: listOf(o, 'peers', MAX_PEERS_PER_MESSAGE, (v, i) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) {
        throw new GatewayMessageError(`peers[${i}] must be an object`);
      }
      const p = v as Record<string, unknown>;
      const handshake = p.lastHandshakeOn;
      if (handshake !== null && !isSerial(handshake)) {
        throw new GatewayMessageError(`peers[${i}].lastHandshakeOn must be epoch milliseconds or null`);
      }
      return {
        publicKey: key(p.publicKey, `peers[${i}].publicKey`),
        lastHandshakeOn: handshake,
        rxBytes: serialOf(p, 'rxBytes'),
        txBytes: serialOf(p, 'txBytes'),
      };
    }),
  };
}

/** The first host address of an IPv4 subnet, with the subnet's prefix: `10.200.0.0/20` → `10.200.0.1/20`. */
export function firstHostAddress(subnet: string): string {
  const [network, prefix] = subnet.split('/');
  if (!isIpv4Cidr(subnet) || !isIpAddress(network))
    throw new GatewayMessageError(`not an IPv4 subnet: ${subnet}`);
  const n = network.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const mask = Number(prefix) === 0 ? 0 : (0xffffffff << (32 - Number(prefix))) >>> 0;
  const host = ((n & mask) >>> 0) + 1;
  return `${[24, 16, 8, 0].map((s) => (host >>> s) & 255).join('.')}/${prefix}`;
}
