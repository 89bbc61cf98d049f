// The UAPI lines of one message: only what differs from what the interface holds, endpoints for
// peers new to it, never a rewrite of all peers.
import { randomBytes } from 'node:crypto';

import { peerLines } from './wireguard-interface';

const keyPair = (): { b64: string; hex: string } => {
  const bytes = randomBytes(32);
  return { b64: bytes.toString('base64'), hex: bytes.toString('hex') };
};

describe('peerLines', () => {
  const none = (): undefined => undefined;

  it('should add a new peer with its allowed IPs only', () => {
    const k = keyPair();
    const out = peerLines(new Map(), [{ publicKey: k.b64, allowedIps: ['100.64.0.2/32'] }], [], none, 25);
    expect(out.lines).toEqual([
      `public_key=${k.hex}`,
      'replace_allowed_ips=true',
      'allowed_ip=100.64.0.2/32',
    ]);
    expect(out.written).toEqual([[k.b64, '100.64.0.2/32', true]]);
  });

  it('should give a peer new to the interface its stored endpoint and a persistent keepalive', () => {
    const k = keyPair();
    const stored = (key: string): string | undefined => (key === k.b64 ? '198.18.0.11:41000' : undefined);
    const out = peerLines(new Map(), [{ publicKey: k.b64, allowedIps: ['100.64.0.2/32'] }], [], stored, 25);
    expect(out.lines).toEqual([
      `public_key=${k.hex}`,
      'replace_allowed_ips=true',
      'allowed_ip=100.64.0.2/32',
      'endpoint=198.18.0.11:41000',
      'persistent_keepalive_interval=25',
    ]);
  });

  it('should skip peers the interface already holds with those addresses, in any order', () => {
    const k = keyPair();
    const held = new Map([[k.b64, '100.64.0.2/32,100.64.0.3/32']]);
    const out = peerLines(
      held,
      [{ publicKey: k.b64, allowedIps: ['100.64.0.3/32', '100.64.0.2/32'] }],
      [],
      none,
      25,
    );
    expect(out.lines).toEqual([]);
  });

  it('should replace the allowed IPs of a held peer without touching its endpoint', () => {
    const k = keyPair();
    const held = new Map([[k.b64, '100.64.0.2/32']]);
    const stored = (): string => '198.18.0.11:41000';
    const out = peerLines(held, [{ publicKey: k.b64, allowedIps: ['100.64.0.9/32'] }], [], stored, 25);
    expect(out.lines).toEqual([
      `public_key=${k.hex}`,
      'replace_allowed_ips=true',
      'allowed_ip=100.64.0.9/32',
    ]);
    expect(out.written).toEqual([[k.b64, '100.64.0.9/32', false]]);
  });

  it('should remove only peers the interface holds', () => {
    const [held1, absent] = [keyPair(), keyPair()];
    const out = peerLines(new Map([[held1.b64, '100.64.0.2/32']]), [], [held1.b64, absent.b64], none, 25);
    expect(out.lines).toEqual([`public_key=${held1.hex}`, 'remove=true']);
    expect(out.removed).toEqual([held1.b64]);
  });

  it('should write one peer among 10,000 held ones in a handful of lines', () => {
    const held = new Map<string, string>();
    for (let i = 0; i < 10_000; i++) held.set(keyPair().b64, `100.64.${i >> 8}.${i & 255}/32`);
    const k = keyPair();
    const out = peerLines(held, [{ publicKey: k.b64, allowedIps: ['100.65.0.1/32'] }], [], none, 25);
    expect(out.lines).toHaveLength(3);
    expect(out.lines.join('\n')).not.toMatch(/replace_peers/);
  });
});
