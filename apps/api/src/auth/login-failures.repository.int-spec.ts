import { randomBytes } from 'node:crypto';
import { LoginFailuresRepository } from './login-failures.repository';
import { createRepositoryDb, type RepositoryDb } from '../../../../test/support/repository-db';

/** The sign-in failure counters against a real, migrated Postgres, without the API. */
describe('LoginFailuresRepository', () => {
  let db: RepositoryDb;
  let repo: LoginFailuresRepository;
  const WINDOW = 60;

  beforeAll(async () => {
    db = await createRepositoryDb();
    repo = new LoginFailuresRepository(db.ds);
  });

  afterAll(async () => {
    await db?.close();
  });

  const key = () => randomBytes(32);
  /** Moves a counter's window start into the past. */
  const age = (k: Buffer, seconds: number) =>
    db.ds.query(`UPDATE login_failure SET window_start = now() - $2 * interval '1 second' WHERE key = $1`, [
      k,
      seconds,
    ]);

  it('should count failures per key and answer only the asked keys, with the time left in the window', async () => {
    const user = key();
    const address = key();
    const other = key();
    await repo.increment([user, address], WINDOW);
    await repo.increment([address, user], WINDOW);
    await repo.increment([other], WINDOW);

    const rows = await repo.current([user, address, key()], WINDOW);
    const byKey = new Map(rows.map((r) => [r.key.toString('hex'), r]));
    expect(rows).toHaveLength(2);
    expect(byKey.get(user.toString('hex'))?.failures).toBe(2);
    expect(byKey.get(address.toString('hex'))?.failures).toBe(2);
    for (const r of rows) {
      expect(r.remainingSeconds).toBeGreaterThan(WINDOW - 10);
      expect(r.remainingSeconds).toBeLessThanOrEqual(WINDOW);
    }
    expect(await repo.current([], WINDOW)).toEqual([]);
  });

  it('should not answer a counter whose window is over, and restart it at 1 on the next failure', async () => {
    const k = key();
    await repo.increment([k], WINDOW);
    await repo.increment([k], WINDOW);
    await age(k, WINDOW + 1);
    expect(await repo.current([k], WINDOW)).toEqual([]);

    await repo.increment([k], WINDOW);
    const [row] = await repo.current([k], WINDOW);
    expect(row.failures).toBe(1);
    expect(row.remainingSeconds).toBeGreaterThan(WINDOW - 10);
  });

  it('should count concurrent failures of the same keys without losing one', async () => {
    const a = key();
    const b = key();
    await Promise.all(Array.from({ length: 8 }, (_, i) => repo.increment(i % 2 ? [a, b] : [b, a], WINDOW)));
    const rows = await repo.current([a, b], WINDOW);
    expect(rows.map((r) => r.failures)).toEqual([8, 8]);
  });

  it('should clear one counter only', async () => {
    const user = key();
    const address = key();
    await repo.increment([user, address], WINDOW);
    await repo.clear(user);
    const rows = await repo.current([user, address], WINDOW);
    expect(rows.map((r) => r.key.toString('hex'))).toEqual([address.toString('hex')]);
  });

  it('should purge counters whose window is over and keep running ones', async () => {
    const over = key();
    const running = key();
    await repo.increment([over, running], WINDOW);
    await age(over, WINDOW);
    expect(await repo.purgeExpired(WINDOW)).toBeGreaterThanOrEqual(1);
    const left: unknown[] = await db.ds.query('SELECT 1 FROM login_failure WHERE key = ANY($1::bytea[])', [
      [over, running],
    ]);
    expect(left).toHaveLength(1);
    expect(await repo.current([running], WINDOW)).toHaveLength(1);
  });
});
