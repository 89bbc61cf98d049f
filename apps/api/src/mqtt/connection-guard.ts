/**
 * Defences of the embedded broker against clients that never mean to speak MQTT honestly: a
 * packet size limit checked on the fixed header as bytes arrive (so a declared 100 MB CONNECT is
 * refused on its first chunk instead of being buffered), and a cap on connections per address
 * that have not authenticated yet. The time a connection may take to authenticate is aedes'
 * connectTimeout.
 */

/** Reads MQTT fixed headers from a byte stream and checks each packet's remaining length. */
export class PacketLengthGuard {
  private phase: 'type' | 'length' | 'body' = 'type';
  private length = 0;
  private multiplier = 1;
  private lengthBytes = 0;
  private remaining = 0;

  /** The largest remaining length allowed; raised once the client has authenticated. */
  constructor(public limit: number) {}

  /** False as soon as a packet declares more than the limit, or its length field is malformed. */
  feed(chunk: Buffer): boolean {
    let i = 0;
    while (i < chunk.length) {
      if (this.phase === 'body') {
        const take = Math.min(this.remaining, chunk.length - i);
        this.remaining -= take;
        i += take;
        if (this.remaining === 0) this.phase = 'type';
      } else if (this.phase === 'type') {
        i++;
        this.phase = 'length';
        this.length = 0;
        this.multiplier = 1;
        this.lengthBytes = 0;
      } else {
        const byte = chunk[i++];
        this.length += (byte & 0x7f) * this.multiplier;
        this.multiplier *= 128;
        this.lengthBytes++;
        // Four bytes at most (MQTT's variable byte integer); refuse early, before the last one.
        if (this.length > this.limit || this.lengthBytes > 4) return false;
        if ((byte & 0x80) === 0) {
          this.remaining = this.length;
          this.phase = this.remaining === 0 ? 'type' : 'body';
        }
      }
    }
    return true;
  }
}

/** Counts connections per address that have not authenticated yet. */
export class PendingConnections {
  private readonly pending = new Map<string, number>();

  constructor(private readonly maxPerAddress: number) {}

  /** Takes a place for `address`; false when it already holds as many as allowed. */
  admit(address: string): boolean {
    const n = this.pending.get(address) ?? 0;
    if (n >= this.maxPerAddress) return false;
    this.pending.set(address, n + 1);
    return true;
  }

  release(address: string): void {
    const n = (this.pending.get(address) ?? 0) - 1;
    if (n > 0) this.pending.set(address, n);
    else this.pending.delete(address);
  }
}
