import type { ThrottlerStorage } from '@nestjs/throttler';

interface Window {
  start: number;
  hits: number;
}

/** How many idle buckets may pile up before a sweep drops the expired ones. */
const SWEEP_AT = 10_000;

/**
 * A fixed-window counter per key for @nestjs/throttler: O(1) per request and one small object
 * per active principal. (The package's default storage keeps every hit's expiry in an array and
 * filters it on each request: O(limit) per request, thousands of entries at a generous limit.)
 * A client may send up to twice the limit across a window boundary, which is fine for a bound
 * against runaway clients.
 */
export class FixedWindowStorage implements ThrottlerStorage {
  private readonly windows = new Map<string, Window>();

  increment(
    key: string,
    ttl: number,
    limit: number,
    _blockDuration: number,
    _throttlerName: string,
  ): Promise<{ totalHits: number; timeToExpire: number; isBlocked: boolean; timeToBlockExpire: number }> {
    const now = Date.now();
    let window = this.windows.get(key);
    if (!window || now - window.start >= ttl) {
      if (!window && this.windows.size >= SWEEP_AT) this.sweep(now, ttl);
      window = { start: now, hits: 0 };
      this.windows.set(key, window);
    }
    window.hits++;
    const timeToExpire = Math.max(1, Math.ceil((window.start + ttl - now) / 1000));
    const isBlocked = window.hits > limit;
    return Promise.resolve({
      totalHits: window.hits,
      timeToExpire,
      isBlocked,
      timeToBlockExpire: isBlocked ? timeToExpire : 0,
    });
  }

  private sweep(now: number, ttl: number): void {
    for (const [key, window] of this.windows) if (now - window.start >= ttl) this.windows.delete(key);
  }
}
