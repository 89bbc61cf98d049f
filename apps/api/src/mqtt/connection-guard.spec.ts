import { PacketLengthGuard, PendingConnections } from './connection-guard';

/** An MQTT fixed header: type byte and the remaining length as a variable byte integer. */
function header(type: number, remaining: number): Buffer {
  const bytes = [type];
  let n = remaining;
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    bytes.push(b);
  } while (n > 0);
  return Buffer.from(bytes);
}

describe('PacketLengthGuard', () => {
  it('should pass packets within the limit, split anywhere across chunks', () => {
    const guard = new PacketLengthGuard(1000);
    const stream = Buffer.concat([
      header(0x10, 300),
      Buffer.alloc(300),
      header(0x30, 1000),
      Buffer.alloc(1000),
      header(0xc0, 0),
    ]);
    for (let i = 0; i < stream.length; i += 7) expect(guard.feed(stream.subarray(i, i + 7))).toBe(true);
  });

  it('should refuse a packet that declares more than the limit on its header, before its body', () => {
    const guard = new PacketLengthGuard(256 * 1024);
    expect(guard.feed(header(0x10, 100 * 1024 * 1024))).toBe(false);
  });

  it('should refuse a length field longer than four bytes', () => {
    expect(
      new PacketLengthGuard(Number.MAX_SAFE_INTEGER).feed(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01])),
    ).toBe(false);
  });

  it('should apply a raised limit to the packets after the change', () => {
    const guard = new PacketLengthGuard(100);
    expect(guard.feed(Buffer.concat([header(0x10, 50), Buffer.alloc(50)]))).toBe(true);
    guard.limit = 10_000;
    expect(guard.feed(Buffer.concat([header(0x30, 5000), Buffer.alloc(5000)]))).toBe(true);
  });
});

describe('PendingConnections', () => {
  it('should admit up to the limit per address and free places on release', () => {
    const pending = new PendingConnections(2);
    expect([pending.admit('a'), pending.admit('a'), pending.admit('a'), pending.admit('b')]).toEqual([
      true,
      true,
      false,
      true,
    ]);
    pending.release('a');
    expect(pending.admit('a')).toBe(true);
  });
});
