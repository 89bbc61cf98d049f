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

  it('should keep one counter per principal whatever the number of hits, and drop idle ones', async () => {
    jest.useFakeTimers({ now: 2_000_000 });
    const storage = new FixedWindowStorage();
    const windows = (storage as unknown as { windows: Map<string, { hits: number }> }).windows;
    for (let i = 0; i < 100_000; i++)
      await storage.increment('user:busy', 60_000, 10_000_000, 60_000, 'default');
    // No per-hit bookkeeping: one small object, whatever the limit and the hits.
    expect(windows.size).toBe(1);
    expect(windows.get('user:busy')?.hits).toBe(100_000);
    // Idle principals pile up only until a sweep after their window ended.
    for (let i = 0; i < 10_000; i++) await storage.increment(`user:${i}`, 60_000, 10, 60_000, 'default');
    jest.setSystemTime(2_000_000 + 60_000);
    await storage.increment('user:late', 60_000, 10, 60_000, 'default');
    expect(windows.size).toBe(1);
    expect(windows.has('user:late')).toBe(true);
  });
});
