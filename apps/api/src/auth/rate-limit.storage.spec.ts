import { FixedWindowStorage } from './rate-limit.storage';

describe('FixedWindowStorage (the request rate limit counter)', () => {
  afterEach(() => jest.useRealTimers());

  it('should block past the limit until the window ends, then count afresh', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const storage = new FixedWindowStorage();
    for (let i = 1; i <= 3; i++) {
      expect(await storage.increment('user:a', 60_000, 3, 60_000, 'default')).toMatchObject({
        totalHits: i,
        isBlocked: false,
      });
    }
    jest.setSystemTime(1_000_000 + 45_000);
    expect(await storage.increment('user:a', 60_000, 3, 60_000, 'default')).toEqual({
      totalHits: 4,
      timeToExpire: 15,
      isBlocked: true,
      timeToBlockExpire: 15,
    });
    // Another principal has its own bucket.
    expect((await storage.increment('user:b', 60_000, 3, 60_000, 'default')).isBlocked).toBe(false);
    jest.setSystemTime(1_000_000 + 60_000);
    expect(await storage.increment('user:a', 60_000, 3, 60_000, 'default')).toMatchObject({
      totalHits: 1,
      isBlocked: false,
    });
  });

  it('should cost the same per request whatever the limit (no per-hit bookkeeping)', async () => {
    const storage = new FixedWindowStorage();
    const started = process.hrtime.bigint();
    for (let i = 0; i < 100_000; i++)
      await storage.increment('user:busy', 60_000, 10_000_000, 60_000, 'default');
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(2_000);
  });
});
