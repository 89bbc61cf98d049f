// Keeps the worked byte-level example of docs/protocol.md honest: the bytes shown there must be
// exactly what the codec produces (and decodes back).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeKuraPayload, encodeKuraPayload, metric } from './kura-payload.codec';
import { parseVpnProfile } from './vpn-profile';

const DOC = join(__dirname, '..', '..', '..', 'docs', 'protocol.md');

/** The hex bytes of the worked example: the text before `#` on each line of the marked block. */
function workedExampleBytes(): Buffer {
  const doc = readFileSync(DOC, 'utf8');
  const block = /<!-- worked-example:start -->\s*```text\n([\s\S]*?)```\s*<!-- worked-example:end -->/.exec(
    doc,
  );
  if (block === null) throw new Error('worked example block not found in docs/protocol.md');
  const digits = block[1]
    .split('\n')
    .map((line) => line.split('#')[0].replace(/\s/g, ''))
    .join('');
  if (!/^([0-9a-f]{2})+$/.test(digits)) throw new Error(`worked example is not hex: ${digits}`);
  return Buffer.from(digits, 'hex');
}

describe('docs/protocol.md worked example', () => {
  const payload = {
    timestamp: 1700000000000,
    metrics: [
      metric.bool('vpn.connected', true),
      metric.string('vpn.ip_address', '10.200.0.7'),
      metric.int64('vpn.seq', 3),
    ],
  };

  it('should show exactly the bytes the codec produces', () => {
    expect(encodeKuraPayload(payload).toString('hex')).toBe(workedExampleBytes().toString('hex'));
  });

  it('should state the right length', () => {
    const doc = readFileSync(DOC, 'utf8');
    expect(doc).toContain(`${workedExampleBytes().length} bytes in all`);
  });

  it('should decode the documented bytes back to the payload', () => {
    expect(decodeKuraPayload(workedExampleBytes())).toEqual(payload);
  });
});

describe('docs/protocol.md VPN profile example', () => {
  it('should be a valid profile', () => {
    const doc = readFileSync(DOC, 'utf8');
    const json = /## 7\. VPN profile[\s\S]*?```json\n([\s\S]*?)```/.exec(doc);
    expect(json).not.toBeNull();
    expect(parseVpnProfile(Buffer.from(json![1])).type).toBe('wireguard');
  });
});
