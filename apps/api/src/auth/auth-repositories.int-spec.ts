import { randomBytes, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../database/data-source';
import { createTestDatabase, type TestDatabase } from '../../../../test/support/database';
import { ApiKey } from '../apikeys/api-key.entity';
import { ApiKeysRepository } from '../apikeys/api-keys.repository';
import { User } from '../users/user.entity';
import { UsersRepository } from '../users/users.repository';
import { AccessToken } from './access-token.entity';
import { TokensRepository } from './tokens.repository';

/**
 * The repositories behind authentication against a real, migrated Postgres: the token lookup of
 * every request, rotation, revocation and purge, and the user and API key sign-in lookups.
 */
describe('Authentication repositories', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let tokens: TokensRepository;
  let users: UsersRepository;
  let apiKeys: ApiKeysRepository;
  let subnetOctet = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = new DataSource(dataSourceOptions(db.url));
    await ds.initialize();
    await ds.runMigrations({ transaction: 'each' });
    tokens = new TokensRepository(ds, ds.getRepository(AccessToken));
    users = new UsersRepository(ds.getRepository(User));
    apiKeys = new ApiKeysRepository(ds.getRepository(ApiKey));
  });

  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  const suffix = () => randomBytes(4).toString('hex');

  const createAccount = async (): Promise<{ id: string; path: string }> => {
    const id = randomUUID();
    const path = `/${id}/`;
    await ds.query(`INSERT INTO account (id, optlock, name, path, vpn_subnet) VALUES ($1, 1, $2, $3, $4)`, [
      id,
      `acct-${suffix()}`,
      path,
      `10.${++subnetOctet}.0.0/16`,
    ]);
    return { id, path };
  };

  const createUser = async (scopeId: string, role: User['role'] = 'operator'): Promise<string> => {
    const username = `user-${suffix()}`;
    await users.insert({ scopeId, username, passwordHash: 'hash-1', role, enabled: true });
    return (await users.findByUsername(username))!.id;
  };

  const createApiKey = async (scopeId: string, createdBy: string): Promise<string> => {
    const id = randomUUID();
    await ds.getRepository(ApiKey).insert({
      id,
      scopeId,
      name: 'key',
      role: 'viewer',
      keyDigest: randomBytes(32),
      lastUsedOn: null,
      createdBy,
    });
    return id;
  };

  const issue = async (
    subject: { userId: string } | { apiKeyId: string },
    scopeId: string,
    expiresInMs = 60_000,
  ): Promise<string> => {
    const id = randomUUID();
    await tokens.insert({
      id,
      userId: 'userId' in subject ? subject.userId : null,
      apiKeyId: 'apiKeyId' in subject ? subject.apiKeyId : null,
      scopeId,
      expiresOn: new Date(Date.now() + expiresInMs),
      refreshDigest: randomBytes(32),
      refreshExpiresOn: new Date(Date.now() + expiresInMs),
      revokedOn: null,
    });
    return id;
  };

  describe('TokensRepository', () => {
    it("should resolve a user's token with the user's role now and the account path", async () => {
      const account = await createAccount();
      const userId = await createUser(account.id, 'operator');
      const tokenId = await issue({ userId }, account.id);
      await ds.query(`UPDATE app_user SET role = 'viewer' WHERE id = $1`, [userId]);

      expect(await tokens.findPrincipal(tokenId)).toEqual(
        expect.objectContaining({
          userId,
          apiKeyId: null,
          scopeId: account.id,
          scopePath: account.path,
          role: 'viewer',
          active: true,
          revokedOn: null,
        }),
      );
    });

    it('should mark a disabled user and an API key whose creator is gone as inactive', async () => {
      const account = await createAccount();
      const userId = await createUser(account.id);
      const keyId = await createApiKey(account.id, userId);
      const userToken = await issue({ userId }, account.id);
      const keyToken = await issue({ apiKeyId: keyId }, account.id);
      expect((await tokens.findPrincipal(keyToken))?.active).toBe(true);

      await ds.query('UPDATE app_user SET enabled = false WHERE id = $1', [userId]);
      expect((await tokens.findPrincipal(userToken))?.active).toBe(false);
      await ds.query('DELETE FROM app_user WHERE id = $1', [userId]);
      expect((await tokens.findPrincipal(keyToken))?.active).toBe(false);
    });

    it('should answer null for an unknown token id', async () => {
      expect(await tokens.findPrincipal(randomUUID())).toBeNull();
    });

    it('should list only live tokens with their role, and revoke every token of one user', async () => {
      const account = await createAccount();
      const alice = await createUser(account.id, 'operator');
      const bob = await createUser(account.id, 'viewer');
      const a1 = await issue({ userId: alice }, account.id);
      const a2 = await issue({ userId: alice }, account.id);
      const b1 = await issue({ userId: bob }, account.id);
      const expired = await issue({ userId: bob }, account.id, -1000);

      expect(await tokens.liveRoles([a1, a2, b1, expired])).toEqual(
        new Map([
          [a1, 'operator'],
          [a2, 'operator'],
          [b1, 'viewer'],
        ]),
      );
      await tokens.revokeAllOf({ userId: alice });
      expect(await tokens.liveRoles([a1, a2, b1])).toEqual(new Map([[b1, 'viewer']]));
      expect(await tokens.liveRoles([])).toEqual(new Map());
    });

    it('should revoke every live token of the given API keys and no other token', async () => {
      const account = await createAccount();
      const userId = await createUser(account.id);
      const doomed = await createApiKey(account.id, userId);
      const kept = await createApiKey(account.id, userId);
      const doomedTokens = [
        await issue({ apiKeyId: doomed }, account.id),
        await issue({ apiKeyId: doomed }, account.id),
      ];
      const keptToken = await issue({ apiKeyId: kept }, account.id);
      const userToken = await issue({ userId }, account.id);

      await tokens.revokeAllOfApiKeys([]);
      await ds.transaction((em) => tokens.revokeAllOfApiKeys([doomed], em));
      for (const id of doomedTokens) expect((await tokens.findPrincipal(id))?.revokedOn).toBeInstanceOf(Date);
      expect((await tokens.findPrincipal(keptToken))?.revokedOn).toBeNull();
      expect((await tokens.findPrincipal(userToken))?.revokedOn).toBeNull();
    });

    it('should lock an unrevoked token for rotation and not find it once revoked', async () => {
      const account = await createAccount();
      const userId = await createUser(account.id);
      const tokenId = await issue({ userId }, account.id);

      await ds.transaction(async (em) => {
        const row = await tokens.lockUnrevoked(em, tokenId);
        expect(row).toEqual(expect.objectContaining({ id: tokenId, userId, scopeId: account.id }));
        await tokens.revoke(tokenId, em);
      });
      await ds.transaction(async (em) => {
        expect(await tokens.lockUnrevoked(em, tokenId)).toBeNull();
      });
      expect((await tokens.findPrincipal(tokenId))?.revokedOn).toBeInstanceOf(Date);
    });

    it('should purge tokens past both expiries and revoked ones past their access expiry, in batches', async () => {
      const account = await createAccount();
      const userId = await createUser(account.id);
      const live = await issue({ userId }, account.id);
      const revokedLive = await issue({ userId }, account.id);
      await tokens.revoke(revokedLive);
      const dead = await Promise.all([1, 2, 3].map(() => issue({ userId }, account.id, -1000)));
      const refreshable = await issue({ userId }, account.id, -1000);
      await ds.query(`UPDATE access_token SET refresh_expires_on = now() + interval '1 hour' WHERE id = $1`, [
        refreshable,
      ]);

      expect(await tokens.purgeExpired(2)).toBeGreaterThanOrEqual(3);
      const left: Array<{ id: string }> = await ds.query(
        'SELECT id FROM access_token WHERE id = ANY($1::uuid[])',
        [[live, revokedLive, refreshable, ...dead]],
      );
      expect(left.map((r) => r.id).sort()).toEqual([live, revokedLive, refreshable].sort());
    });
  });

  describe('UsersRepository', () => {
    it('should upgrade a password hash only while it is still the old one', async () => {
      const account = await createAccount();
      const userId = await createUser(account.id);
      const username = (await ds.query('SELECT username FROM app_user WHERE id = $1', [userId]))[0].username;

      await users.upgradePasswordHash(userId, 'hash-0', 'hash-stale');
      expect((await users.findByUsername(username))?.passwordHash).toBe('hash-1');
      await users.upgradePasswordHash(userId, 'hash-1', 'hash-2');
      expect(await users.findByUsername(username)).toEqual(
        expect.objectContaining({ id: userId, scopeId: account.id, passwordHash: 'hash-2', enabled: true }),
      );
      const [{ optlock }] = await ds.query('SELECT optlock FROM app_user WHERE id = $1', [userId]);
      expect(optlock).toBe(1);
    });

    it('should answer null for an unknown username', async () => {
      expect(await users.findByUsername(`nobody-${suffix()}`)).toBeNull();
    });
  });

  describe('ApiKeysRepository', () => {
    it("should answer a key's credentials with whether its creator exists, and mark it used", async () => {
      const account = await createAccount();
      const userId = await createUser(account.id);
      const keyId = await createApiKey(account.id, userId);
      const childId = await createApiKey(account.id, keyId);

      expect(await apiKeys.findCredentials(childId)).toEqual(
        expect.objectContaining({ id: childId, scopeId: account.id, creatorExists: true }),
      );
      await ds.query('DELETE FROM app_user WHERE id = $1', [userId]);
      expect((await apiKeys.findCredentials(keyId))?.creatorExists).toBe(false);
      expect((await apiKeys.findCredentials(childId))?.creatorExists).toBe(true);
      expect(await apiKeys.findCredentials(randomUUID())).toBeNull();

      const on = new Date('2026-01-02T03:04:05Z');
      await apiKeys.markUsed(keyId, on);
      expect((await ds.getRepository(ApiKey).findOneByOrFail({ id: keyId })).lastUsedOn).toEqual(on);
    });

    it('should delete the keys a creator made, and the keys those made, and nothing else', async () => {
      const account = await createAccount();
      const other = await createAccount();
      const userId = await createUser(account.id);
      const bystander = await createUser(other.id);
      const key = await createApiKey(account.id, userId);
      const child = await createApiKey(account.id, key);
      const grandchild = await createApiKey(account.id, child);
      const unrelated = await createApiKey(account.id, randomUUID());
      const othersKey = await createApiKey(other.id, bystander);

      const deleted = await ds.transaction((em) => apiKeys.deleteCreatedBy(em, userId));
      expect(deleted.sort()).toEqual([key, child, grandchild].sort());
      const left: Array<{ id: string }> = await ds.query(
        'SELECT id FROM api_key WHERE id = ANY($1::uuid[])',
        [[key, child, grandchild, unrelated, othersKey]],
      );
      expect(left.map((r) => r.id).sort()).toEqual([unrelated, othersKey].sort());
      expect(await ds.transaction((em) => apiKeys.deleteCreatedBy(em, userId))).toEqual([]);
    });

    it('should delete nothing when the creator deletion rolls back', async () => {
      const account = await createAccount();
      const userId = await createUser(account.id);
      const key = await createApiKey(account.id, userId);
      await expect(
        ds.transaction(async (em) => {
          await apiKeys.deleteCreatedBy(em, userId);
          throw new Error('creator deletion failed');
        }),
      ).rejects.toThrow('creator deletion failed');
      expect(await apiKeys.findCredentials(key)).not.toBeNull();
    });
  });
});
