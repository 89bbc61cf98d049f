// A client for WireGuard's cross-platform userspace API (UAPI): the line protocol a userspace
// implementation such as wireguard-go serves on /var/run/wireguard/<interface>.sock. Talking to the
// socket directly lets a caller change one peer without spawning `wg` and without `wg` re-reading
// (and re-sending) every peer of a large interface.
import { connect } from 'node:net';
import { join } from 'node:path';

/** Where wireguard-go puts its control sockets: one directory for the whole host, whatever the namespace. */
export const UAPI_SOCKET_DIR = '/var/run/wireguard';

export function uapiSocketPath(interfaceName: string): string {
  return join(UAPI_SOCKET_DIR, `${interfaceName}.sock`);
}

/** A UAPI exchange failed: no socket, a timeout, an unreadable answer, or `errno` other than 0. */
export class UapiError extends Error {
  override readonly name = 'UapiError';

  constructor(
    message: string,
    /** The `errno` the implementation answered (negative, e.g. -22 for a bad line), null if none. */
    readonly errno: number | null,
    /** The socket-level error code (ENOENT, ECONNREFUSED, ...) when the socket could not be used. */
    readonly code?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface UapiPeer {
  /** Base64, as everywhere outside UAPI. */
  publicKey: string;
  /** `ip:port` or `[ipv6]:port`; null until the peer has been configured with or seen at an address. */
  endpoint: string | null;
  /** Epoch milliseconds of the latest handshake, null before the first. */
  lastHandshakeMs: number | null;
  rxBytes: number;
  txBytes: number;
  allowedIps: string[];
  /** Seconds, 0 = off. */
  persistentKeepalive: number;
}

export interface UapiDevice {
  /** Base64; only present when a private key is set. Never log it. */
  privateKey?: string;
  listenPort: number;
  peers: UapiPeer[];
}

const HEX_KEY = /^[0-9a-f]{64}$/;
// A line we send: a lower-case key, `=`, a value without line breaks (a break would start a new
// instruction, so a value must never be able to smuggle one in).
const SET_LINE = /^[a-z_]+=[^\n\r]*$/;

export function keyToHex(base64Key: string): string {
  const bytes = Buffer.from(base64Key, 'base64');
  if (bytes.length !== 32 || bytes.toString('base64') !== base64Key) {
    throw new UapiError('not a base64 WireGuard key', null);
  }
  return bytes.toString('hex');
}

export function hexToKey(hexKey: string): string {
  if (!HEX_KEY.test(hexKey)) throw new UapiError('not a hex WireGuard key', null);
  return Buffer.from(hexKey, 'hex').toString('base64');
}

/**
 * Parses the answer to `get=1`. It runs every few seconds over tens of thousands of peers, so it
 * walks the text once with indexOf instead of splitting it into an array of lines first.
 */
export function parseUapiGet(text: string): UapiDevice {
  const device: UapiDevice = { listenPort: 0, peers: [] };
  let peer: UapiPeer | undefined;
  let handshakeSec = 0;
  let handshakeNsec = 0;
  let errno: number | null = null;
  const finishPeer = (): void => {
    if (peer === undefined) return;
    peer.lastHandshakeMs =
      handshakeSec === 0 && handshakeNsec === 0
        ? null
        : handshakeSec * 1000 + Math.floor(handshakeNsec / 1e6);
    device.peers.push(peer);
    peer = undefined;
  };
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const eq = text.indexOf('=', pos);
    if (end === pos) {
      pos = end + 1;
      continue;
    }
    if (eq < 0 || eq > end) throw new UapiError(`unreadable UAPI line "${text.slice(pos, end)}"`, null);
    const key = text.slice(pos, eq);
    const value = text.slice(eq + 1, end);
    pos = end + 1;
    switch (key) {
      case 'public_key':
        finishPeer();
        handshakeSec = 0;
        handshakeNsec = 0;
        peer = {
          publicKey: hexToKey(value),
          endpoint: null,
          lastHandshakeMs: null,
          rxBytes: 0,
          txBytes: 0,
          allowedIps: [],
          persistentKeepalive: 0,
        };
        break;
      case 'private_key':
        device.privateKey = hexToKey(value);
        break;
      case 'listen_port':
        device.listenPort = toNumber(key, value);
        break;
      case 'errno':
        if (!/^-?[0-9]{1,10}$/.test(value))
          throw new UapiError(`UAPI errno is not a number: "${value}"`, null);
        errno = Number(value);
        break;
      default:
        if (peer !== undefined) {
          switch (key) {
            case 'endpoint':
              peer.endpoint = value;
              break;
            case 'last_handshake_time_sec':
              handshakeSec = toNumber(key, value);
              break;
            case 'last_handshake_time_nsec':
              handshakeNsec = toNumber(key, value);
              break;
            case 'rx_bytes':
              peer.rxBytes = toNumber(key, value);
              break;
            case 'tx_bytes':
              peer.txBytes = toNumber(key, value);
              break;
            case 'allowed_ip':
              peer.allowedIps.push(value);
              break;
            case 'persistent_keepalive_interval':
              peer.persistentKeepalive = toNumber(key, value);
              break;
            default:
            // preshared_key, protocol_version and keys of later versions: not needed.
          }
        }
    }
  }
  finishPeer();
  if (errno === null) throw new UapiError('UAPI answer without errno', null);
  if (errno !== 0) throw new UapiError(`UAPI get failed with errno=${errno}`, errno);
  return device;
}

function toNumber(key: string, value: string): number {
  const n = /^[0-9]{1,20}$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(n)) throw new UapiError(`UAPI ${key} is not a number: "${value}"`, null);
  return n;
}

/**
 * One connection per operation: wireguard-go serialises operations per device anyway, and a fresh
 * connection means a timed-out or broken exchange can never leave half an answer for the next one.
 */
export class WireguardUapi {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = 10_000,
  ) {}

  async get(): Promise<UapiDevice> {
    return parseUapiGet(await this.exchange('get=1\n\n'));
  }

  /**
   * Sends one `set=1` operation. wireguard-go applies the lines in order and stops at the first bad
   * one, so on an error the lines before it may have taken effect: callers re-read with get().
   */
  async set(lines: readonly string[]): Promise<void> {
    for (const line of lines) {
      if (!SET_LINE.test(line)) throw new UapiError(`refusing to send a malformed UAPI line`, null);
    }
    const answer = await this.exchange(`set=1\n${lines.length > 0 ? `${lines.join('\n')}\n` : ''}\n`);
    const match = /^errno=(-?[0-9]+)$/m.exec(answer);
    if (match === null) throw new UapiError('UAPI set answered without errno', null);
    const errno = Number(match[1]);
    if (errno !== 0) throw new UapiError(`UAPI set failed with errno=${errno}`, errno);
  }

  private exchange(request: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let settled = false;
      const socket = connect(this.socketPath);
      const fail = (err: UapiError): void => {
        if (settled) return;
        settled = true;
        socket.destroy();
        reject(err);
      };
      socket.setTimeout(this.timeoutMs, () =>
        fail(new UapiError(`${this.socketPath}: no answer within ${this.timeoutMs} ms`, null, 'ETIMEDOUT')),
      );
      socket.on('connect', () => {
        // Half-closing tells wireguard-go there is no further operation: it answers, then closes.
        socket.end(request);
      });
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', (err: NodeJS.ErrnoException) =>
        fail(new UapiError(`${this.socketPath}: ${err.message}`, null, err.code, { cause: err })),
      );
      socket.on('end', () => {
        if (settled) return;
        settled = true;
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
    });
  }
}
