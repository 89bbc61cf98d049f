import { randomUUID } from 'node:crypto';
import { Account } from '../accounts/account.entity';
import { AccountsRepository } from '../accounts/accounts.repository';
import { Gateway } from './gateway.entity';
import { GatewayRepository } from './gateway.repository';
import { eventually } from '../../../../test/support/eventually';
import { createRepositoryDb, suffix, type RepositoryDb } from '../../../../test/support/repository-db';

/**
 * The gateway repository against a real, migrated Postgres, without the API: the parts that lean
 * on the account (its row lock, its name) and the publisher lock.
 */
describe('GatewayRepository', () => {
  let db: RepositoryDb;
  let accounts: AccountsRepository;
  let repo: GatewayRepository;

  beforeAll(async () => {
    db = await createRepositoryDb();
    accounts = new AccountsRepository(db.ds.getRepository(Account));
    repo = new GatewayRepository(db.ds.getRepository(Gateway), db.ds, accounts);
  });

  afterAll(async () => {
    await db?.close();
  });

  const fields = (name = `gw-${suffix()}`) => ({ name, endpoint: 'vpn.example.net:51820', description: '' });

  describe('create', () => {
    it("should create a gateway, and not find it from another tenant's scope", async () => {
      const a = await db.account();
      const b = await db.account();
      const gw = await repo.create(a.id, fields(), null);
      expect((await repo.findOne(a.id, gw.id))?.name).toBe(gw.name);
      expect(await repo.findOne(b.id, gw.id)).toBeNull();
    });

    it('should refuse a name a device or a gateway of the account has, and allow it in another account', async () => {
      const a = await db.account();
      const b = await db.account();
      const device = await db.device(a);
      await expect(repo.create(a.id, fields(device.clientId), null)).rejects.toMatchObject({
        code: 'ENTRY_EXISTS',
      });
      const gw = await repo.create(a.id, fields(), null);
      await expect(repo.create(a.id, fields(gw.name), null)).rejects.toMatchObject({ code: 'ENTRY_EXISTS' });
      await expect(repo.create(b.id, fields(gw.name), null)).resolves.toMatchObject({ scopeId: b.id });
    });

    it('should wait for the account row lock before it checks the name', async () => {
      const a = await db.account();
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holder = db.ds.transaction(async (em) => {
        await accounts.lockForUpdate(em, a.id);
        locked();
        await held;
      });
      await isLocked;
      let created = false;
      const creation = repo.create(a.id, fields(), null).then((g) => {
        created = true;
        return g;
      });
      // The creation is seen waiting on a row lock in this database, and has not finished.
      await eventually(async () => {
        const waiting: unknown[] = await db.ds.query(
          `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
        );
        expect(waiting.length).toBeGreaterThan(0);
      });
      expect(created).toBe(false);
      release();
      await holder;
      await expect(creation).resolves.toMatchObject({ scopeId: a.id });
    });
  });

  it("should answer the account's name, and 404 for an unknown account", async () => {
    const a = await db.account();
    expect(await repo.accountName(a.id)).toBe(a.name);
    await expect(repo.accountName(randomUUID())).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  describe('publisher lock', () => {
    it('should run the work of one holder per gateway at a time and answer its result', async () => {
      const gateway = randomUUID();
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      let started!: () => void;
      const isHeld = new Promise<void>((r) => (started = r));
      const first = repo.withPublisherLock(gateway, async () => {
        started();
        await held;
        return 'first';
      });
      await isHeld;
      let ran = false;
      expect(
        await repo.withPublisherLock(gateway, async () => {
          ran = true;
          return 'second';
        }),
      ).toBeNull();
      expect(ran).toBe(false);
      // Another gateway's lock is independent.
      expect(await repo.withPublisherLock(randomUUID(), async () => 'other')).toBe('other');
      release();
      expect(await first).toBe('first');
      expect(await repo.withPublisherLock(gateway, async () => 'again')).toBe('again');
    });

    it('should give the lock back when the work fails', async () => {
      const gateway = randomUUID();
      await expect(
        repo.withPublisherLock(gateway, () => Promise.reject(new Error('round failed'))),
      ).rejects.toThrow('round failed');
      expect(await repo.withPublisherLock(gateway, async () => false)).toBe(false);
    });
  });
});
