import { randomUUID } from 'node:crypto';
import { Account } from './account.entity';
import { AccountsRepository } from './accounts.repository';
import { createRepositoryDb, suffix, type RepositoryDb } from '../../../../test/support/repository-db';

/** The accounts repository against a real, migrated Postgres, without the API. */
describe('AccountsRepository', () => {
  let db: RepositoryDb;
  let repo: AccountsRepository;

  beforeAll(async () => {
    db = await createRepositoryDb();
    repo = new AccountsRepository(db.ds.getRepository(Account));
  });

  afterAll(async () => {
    await db?.close();
  });

  const newAccount = (parent: { id: string; path: string }, fields: { name?: string; vpnSubnet: string }) => {
    const id = randomUUID();
    return {
      id,
      scopeId: parent.id,
      name: fields.name ?? `acct-${suffix()}`,
      description: 'made by a test',
      path: `${parent.path}${id}/`,
      vpnSubnet: fields.vpnSubnet,
      createdBy: null,
    };
  };

  describe('visibility', () => {
    it('should find an account from its own scope and from every ancestor, and not from a sibling or below', async () => {
      const root = await db.account();
      const tenant = await db.account({ parent: root });
      const child = await db.account({ parent: tenant });
      const sibling = await db.account({ parent: root });

      expect((await repo.findVisible(root.path, child.id))?.name).toBe(child.name);
      expect((await repo.findVisible(tenant.path, child.id))?.name).toBe(child.name);
      expect((await repo.findVisible(child.path, child.id))?.name).toBe(child.name);
      expect(await repo.findVisible(sibling.path, child.id)).toBeNull();
      expect(await repo.findVisible(child.path, tenant.id)).toBeNull();
      expect(await repo.findVisible(root.path, randomUUID())).toBeNull();
    });

    it("should answer an account's path, and null for an unknown account", async () => {
      const root = await db.account();
      const tenant = await db.account({ parent: root });
      expect(await repo.pathOf(tenant.id)).toBe(tenant.path);
      expect(await repo.pathOf(randomUUID())).toBeNull();
    });

    it('should not update an account of another tenant, and report it as not found', async () => {
      const root = await db.account();
      const a = await db.account({ parent: root });
      const b = await db.account({ parent: root });
      await expect(repo.update(b.path, a.id, 1, { description: 'taken over' })).rejects.toMatchObject({
        code: 'NOT_FOUND',
      });
      const [row]: Array<{ description: string; optlock: number }> = await db.ds.query(
        'SELECT description, optlock FROM account WHERE id = $1',
        [a.id],
      );
      expect(row).toEqual({ description: '', optlock: 1 });
    });

    it('should not delete an account of another tenant', async () => {
      const root = await db.account();
      const a = await db.account({ parent: root });
      const b = await db.account({ parent: root });
      await repo.delete(b.path, a.id);
      expect(await repo.findVisible(root.path, a.id)).not.toBeNull();
    });
  });

  describe('update', () => {
    it('should apply a change with the current optlock and bump it', async () => {
      const root = await db.account();
      const updated = await repo.update(root.path, root.id, 1, { description: 'new', modifiedBy: null });
      expect(updated).toMatchObject({ description: 'new', optlock: 2 });
    });

    it('should refuse a stale optlock with OPTLOCK_CONFLICT and change nothing', async () => {
      const root = await db.account();
      await expect(repo.update(root.path, root.id, 7, { description: 'stale' })).rejects.toMatchObject({
        code: 'OPTLOCK_CONFLICT',
      });
      expect((await repo.findVisible(root.path, root.id))?.description).toBe('');
    });
  });

  describe('insert', () => {
    it('should insert a child account with its path and subnet', async () => {
      const root = await db.account();
      const fields = newAccount(root, { vpnSubnet: '10.250.0.0/24' });
      const saved = await db.ds.transaction((em) => repo.insert(em, fields));
      expect(saved).toMatchObject({
        id: fields.id,
        name: fields.name,
        vpnSubnet: '10.250.0.0/24',
        optlock: 1,
      });
      expect((await repo.findVisible(root.path, fields.id))?.path).toBe(fields.path);
    });

    it('should map a taken name to ENTRY_EXISTS and insert nothing', async () => {
      const root = await db.account();
      const fields = newAccount(root, { name: root.name, vpnSubnet: '10.251.0.0/24' });
      await expect(db.ds.transaction((em) => repo.insert(em, fields))).rejects.toMatchObject({
        code: 'ENTRY_EXISTS',
        message: 'Account name already taken',
      });
      expect(await repo.findVisible(root.path, fields.id)).toBeNull();
    });

    it('should map an overlapping subnet to ENTRY_EXISTS', async () => {
      const root = await db.account();
      const fields = newAccount(root, { vpnSubnet: root.vpnSubnet.replace('/16', '/24') });
      await expect(db.ds.transaction((em) => repo.insert(em, fields))).rejects.toMatchObject({
        code: 'ENTRY_EXISTS',
        message: 'VPN subnet overlaps another account',
      });
    });

    it('should map a subnet with host bits set to INVALID_ARGUMENT', async () => {
      const root = await db.account();
      const fields = newAccount(root, { vpnSubnet: '10.252.0.1/24' });
      await expect(db.ds.transaction((em) => repo.insert(em, fields))).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
        message: 'Invalid vpnSubnet',
      });
    });
  });

  describe('delete', () => {
    it('should delete an empty account', async () => {
      const root = await db.account();
      const child = await db.account({ parent: root });
      await repo.delete(root.path, child.id);
      expect(await repo.findVisible(root.path, child.id)).toBeNull();
    });

    it('should refuse to delete an account that still has devices with CONFLICT', async () => {
      const root = await db.account();
      const child = await db.account({ parent: root });
      await db.device(child);
      await expect(repo.delete(root.path, child.id)).rejects.toMatchObject({
        code: 'CONFLICT',
        message: 'Account still has devices',
      });
      expect(await repo.findVisible(root.path, child.id)).not.toBeNull();
    });
  });

  describe('tree and names', () => {
    it('should count children and the accounts below each path', async () => {
      const root = await db.account();
      const a = await db.account({ parent: root });
      const b = await db.account({ parent: a });
      await db.account({ parent: b });
      await db.account({ parent: root });
      expect(await repo.countChildren(root.id)).toBe(2);
      expect(await repo.countChildren(b.id)).toBe(1);
      expect(await db.ds.transaction((em) => repo.countBelow(em, [root.path, a.path, b.path]))).toEqual([
        4, 2, 1,
      ]);
    });

    it("should give an account's name, and null for an unknown account", async () => {
      const root = await db.account();
      expect(await repo.nameOf(root.id)).toBe(root.name);
      expect(await repo.nameOf(randomUUID())).toBeNull();
    });

    it('should move the start of the tunnel address search up when taken and down when freed', async () => {
      const a = await db.account({ vpnSubnet: '10.241.0.0/24' });
      const start = () =>
        db.ds.transaction(async (em) => (await repo.lockForUpdate(em, a.id))?.nextTunnelHost);
      await db.ds.transaction((em) => repo.tunnelHostTaken(em, a.id, 9));
      expect(await start()).toBe(10);
      await db.ds.transaction((em) => repo.tunnelAddressFreed(em, a.id, '10.241.0.7'));
      expect(await start()).toBe(7);
      // A higher freed address, or one outside the subnet, leaves the start where it is.
      await db.ds.transaction((em) => repo.tunnelAddressFreed(em, a.id, '10.241.0.8'));
      await db.ds.transaction((em) => repo.tunnelAddressFreed(em, a.id, '10.9.0.3'));
      expect(await start()).toBe(7);
    });

    it('should lock the account row and give its subnet, and null for an unknown account', async () => {
      const root = await db.account({ vpnSubnet: '10.240.0.0/16' });
      await db.ds.transaction(async (em) => {
        expect(await repo.lockForUpdate(em, root.id)).toEqual({
          vpnSubnet: '10.240.0.0/16',
          nextTunnelHost: 2,
        });
        expect(await repo.lockForUpdate(em, randomUUID())).toBeNull();
        // Another transaction cannot take the same row lock while this one holds it.
        await expect(
          db.ds.transaction(async (other) => {
            await other.query(`SET LOCAL lock_timeout = '100ms'`);
            await repo.lockForUpdate(other, root.id);
          }),
        ).rejects.toThrow(/lock timeout/);
      });
    });
  });

  describe('subnet allocation', () => {
    const search = { network: '172.20.0.0', prefix: 24, blockSize: 256, blocks: 3 };

    it('should find the first block no account overlaps, and null when all are taken', async () => {
      const root = await db.account({ vpnSubnet: '172.20.0.0/24' });
      await db.account({ parent: root, vpnSubnet: '172.20.2.0/25' });
      await db.ds.transaction(async (em) => {
        expect(await repo.firstFreeSubnet(em, search)).toBe('172.20.1.0/24');
        expect(await repo.subnetsOverlapping(em, '172.20.0.0/22')).toEqual(
          expect.arrayContaining([
            { net: '172.20.0.0', len: 24 },
            { net: '172.20.2.0', len: 25 },
          ]),
        );
      });
      await db.account({ parent: root, vpnSubnet: '172.20.1.0/24' });
      expect(await db.ds.transaction((em) => repo.firstFreeSubnet(em, search))).toBeNull();
    });
  });
});
