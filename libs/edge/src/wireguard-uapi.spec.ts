// The UAPI client: parsing `get` answers, key conversions, and the exchange with a socket that
// answers like wireguard-go (a fake server on a temporary Unix socket).
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { UapiError, WireguardUapi, hexToKey, keyToHex, parseUapiGet, uapiSocketPath } from './wireguard-uapi';

const key = (): { base64: string; hex: string } => {
  const bytes = randomBytes(32);
  return { base64: bytes.toString('base64'), hex: bytes.toString('hex') };
};

describe('keyToHex / hexToKey', () => {
  it('should convert between base64 (outside) and hex (UAPI) both ways', () => {
    const k = key();
    expect(keyToHex(k.base64)).toBe(k.hex);
    expect(hexToKey(k.hex)).toBe(k.base64);
  });

  it('should refuse anything that is not a 32-byte key', () => {
    expect(() => keyToHex('abc=')).toThrow(UapiError);
    expect(() => keyToHex(`${key().base64}x`)).toThrow(UapiError);
    expect(() => hexToKey('00'.repeat(31))).toThrow(UapiError);
    expect(() => hexToKey('zz'.repeat(32))).toThrow(UapiError);
  });

  it('should give the socket path wireguard-go uses', () => {
    expect(uapiSocketPath('vpngw0')).toBe('/var/run/wireguard/vpngw0.sock');
  });
});

describe('parseUapiGet', () => {
  it('should read the device and every peer, with keys in base64 and handshakes in epoch ms', () => {
    const priv = key();
    const p1 = key();
    const p2 = key();
    const text = [
      `private_key=${priv.hex}`,
      'listen_port=51820',
      `public_key=${p1.hex}`,
      `preshared_key=${'0'.repeat(64)}`,
      'protocol_version=1',
      'endpoint=198.18.0.11:40000',
      'last_handshake_time_sec=1700000000',
      'last_handshake_time_nsec=123456789',
      'tx_bytes=1024',
      'rx_bytes=2048',
      'persistent_keepalive_interval=25',
      'allowed_ip=100.64.1.2/32',
      'allowed_ip=100.64.9.0/24',
      `public_key=${p2.hex}`,
      'last_handshake_time_sec=0',
      'last_handshake_time_nsec=0',
      'tx_bytes=0',
      'rx_bytes=0',
      'persistent_keepalive_interval=0',
      'allowed_ip=100.64.1.3/32',
      'errno=0',
      '',
      '',
    ].join('\n');
    expect(parseUapiGet(text)).toEqual({
      privateKey: priv.base64,
      listenPort: 51820,
      peers: [
        {
          publicKey: p1.base64,
          endpoint: '198.18.0.11:40000',
          lastHandshakeMs: 1_700_000_000_123,
          rxBytes: 2048,
          txBytes: 1024,
          allowedIps: ['100.64.1.2/32', '100.64.9.0/24'],
          persistentKeepalive: 25,
        },
        {
          publicKey: p2.base64,
          endpoint: null,
          lastHandshakeMs: null,
          rxBytes: 0,
          txBytes: 0,
          allowedIps: ['100.64.1.3/32'],
          persistentKeepalive: 0,
        },
      ],
    });
  });

  it('should read an interface without key or peers', () => {
    expect(parseUapiGet('listen_port=40001\nerrno=0\n\n')).toEqual({ listenPort: 40001, peers: [] });
  });

  it('should fail on a non-zero errno, a missing errno and unreadable lines', () => {
    expect(() => parseUapiGet('errno=-22\n\n')).toThrow(expect.objectContaining({ errno: -22 }));
    expect(() => parseUapiGet('listen_port=1\n\n')).toThrow('without errno');
    expect(() => parseUapiGet('listen_port\nerrno=0\n\n')).toThrow('unreadable');
    expect(() => parseUapiGet('listen_port=x\nerrno=0\n\n')).toThrow('not a number');
  });

  it('should read 10,000 peers', () => {
    const lines: string[] = ['listen_port=51820'];
    for (let i = 0; i < 10_000; i++) {
      lines.push(
        `public_key=${key().hex}`,
        `preshared_key=${'0'.repeat(64)}`,
        'protocol_version=1',
        `endpoint=198.18.${i >> 8}.${i & 255}:51820`,
        `last_handshake_time_sec=${1_700_000_000 + i}`,
        'last_handshake_time_nsec=5000000',
        `tx_bytes=${i}`,
        `rx_bytes=${i * 2}`,
        'persistent_keepalive_interval=0',
        `allowed_ip=100.64.${i >> 8}.${i & 255}/32`,
      );
    }
    const text = `${lines.join('\n')}\nerrno=0\n\n`;
    const device = parseUapiGet(text);
    expect(device.peers).toHaveLength(10_000);
    expect(device.peers[9999]).toMatchObject({ lastHandshakeMs: 1_700_009_999_005, rxBytes: 19_998 });
  });
});

describe('WireguardUapi', () => {
  let dir: string;
  let server: Server | undefined;
  let requests: string[];
  const sockets: Socket[] = [];

  /** A socket that records each request and answers with `answer(request)` (or never, for null). */
  async function serve(answer: (request: string) => string | null): Promise<WireguardUapi> {
    const path = join(dir, 'wg.sock');
    requests = [];
    // Half-open like wireguard-go: our end of input does not end its answer.
    server = createServer({ allowHalfOpen: true }, (socket) => {
      sockets.push(socket);
      let request = '';
      socket.on('data', (chunk: Buffer) => (request += chunk.toString('utf8')));
      socket.on('end', () => {
        requests.push(request);
        const reply = answer(request);
        if (reply !== null) socket.end(reply);
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => server?.listen(path, resolve));
    return new WireguardUapi(path, 300);
  }

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'uapi-spec-'));
  });

  afterEach(async () => {
    // A half-open socket that was never answered would keep close() waiting.
    for (const socket of sockets.splice(0)) socket.destroy();
    if (server !== undefined) await new Promise((resolve) => server?.close(resolve));
    server = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it('should send get=1 and parse the answer', async () => {
    const p = key();
    const uapi = await serve(() => `listen_port=9\npublic_key=${p.hex}\nallowed_ip=10.0.0.1/32\nerrno=0\n\n`);
    const device = await uapi.get();
    expect(requests).toEqual(['get=1\n\n']);
    expect(device.peers.map((x) => x.publicKey)).toEqual([p.base64]);
  });

  it('should send one set=1 operation with the lines, ended by an empty line', async () => {
    const uapi = await serve(() => 'errno=0\n\n');
    await uapi.set(['listen_port=51820', 'replace_peers=false']);
    expect(requests).toEqual(['set=1\nlisten_port=51820\nreplace_peers=false\n\n']);
  });

  it('should fail with the errno wireguard-go answered', async () => {
    const uapi = await serve(() => 'errno=-98\n\n');
    await expect(uapi.set(['listen_port=1'])).rejects.toMatchObject({ name: 'UapiError', errno: -98 });
  });

  it('should never send a line that could smuggle in another instruction', async () => {
    const uapi = await serve(() => 'errno=0\n\n');
    await expect(uapi.set(['endpoint=1.2.3.4:5\nremove=true'])).rejects.toThrow('malformed');
    expect(requests).toEqual([]);
  });

  it('should fail with ENOENT when there is no socket, and time out when nobody answers', async () => {
    await expect(new WireguardUapi(join(dir, 'none.sock')).get()).rejects.toMatchObject({ code: 'ENOENT' });
    const silent = await serve(() => null);
    await expect(silent.get()).rejects.toMatchObject({ code: 'ETIMEDOUT' });
  });
});
