import { randomBytes, randomUUID } from 'node:crypto';
import { EventStreamTicketsRepository } from './event-stream-tickets.repository';
import { createRepositoryDb, type RepositoryDb } from '../../../../test/support/repository-db';

/** The event-stream ticket store against a real, migrated Postgres, without the API. */
describe('EventStreamTicketsRepository', () => {
  let db: RepositoryDb;
  let repo: EventStreamTicketsRepository;

  beforeAll(async () => {
    db = await createRepositoryDb();
    repo = new EventStreamTicketsRepository(db.ds);
  });

  afterAll(async () => {
    await db?.close();
  });

  const inAMinute = () => new Date(Date.now() + 60_000);
  const left = async (digest: Buffer): Promise<number> =>
    (await db.ds.query('SELECT 1 FROM event_stream_ticket WHERE digest = $1', [digest])).length;

  it('should redeem a ticket once, with its token, its scope and the scope path', async () => {
    const account = await db.account();
    const digest = randomBytes(32);
    const tokenId = randomUUID();
    await repo.insert({ digest, tokenId, scopeId: account.id, expiresOn: inAMinute() });

    expect(await repo.redeem(digest)).toEqual({
      tokenId,
      scopeId: account.id,
      fresh: true,
      scopePath: account.path,
    });
    expect(await repo.redeem(digest)).toBeNull();
    expect(await left(digest)).toBe(0);
  });

  it('should answer null for an unknown ticket and leave the others alone', async () => {
    const account = await db.account();
    const digest = randomBytes(32);
    await repo.insert({ digest, tokenId: randomUUID(), scopeId: account.id, expiresOn: inAMinute() });
    expect(await repo.redeem(randomBytes(32))).toBeNull();
    expect(await left(digest)).toBe(1);
  });

  it('should use up an expired ticket and say it is not fresh, and a ticket of a deleted scope has no path', async () => {
    const account = await db.account();
    const expired = randomBytes(32);
    await repo.insert({
      digest: expired,
      tokenId: randomUUID(),
      scopeId: account.id,
      expiresOn: new Date(Date.now() - 1000),
    });
    expect(await repo.redeem(expired)).toMatchObject({ fresh: false, scopePath: account.path });
    expect(await left(expired)).toBe(0);

    const orphan = randomBytes(32);
    await repo.insert({
      digest: orphan,
      tokenId: randomUUID(),
      scopeId: randomUUID(),
      expiresOn: inAMinute(),
    });
    expect(await repo.redeem(orphan)).toMatchObject({ fresh: true, scopePath: null });
  });

  it('should let exactly one of two concurrent redemptions have the ticket', async () => {
    const account = await db.account();
    const digest = randomBytes(32);
    await repo.insert({ digest, tokenId: randomUUID(), scopeId: account.id, expiresOn: inAMinute() });
    const results = await Promise.all([repo.redeem(digest), repo.redeem(digest)]);
    expect(results.filter((r) => r !== null)).toHaveLength(1);
  });

  it('should purge expired tickets only', async () => {
    const account = await db.account();
    const expired = randomBytes(32);
    const live = randomBytes(32);
    await repo.insert({
      digest: expired,
      tokenId: randomUUID(),
      scopeId: account.id,
      expiresOn: new Date(Date.now() - 1000),
    });
    await repo.insert({ digest: live, tokenId: randomUUID(), scopeId: account.id, expiresOn: inAMinute() });
    expect(await repo.purgeExpired()).toBeGreaterThanOrEqual(1);
    expect(await left(expired)).toBe(0);
    expect(await left(live)).toBe(1);
  });
});
