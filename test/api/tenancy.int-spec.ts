import { randomUUID } from 'node:crypto';
import request from 'supertest';
import {
  createAccount,
  createApiKey,
  createTenant,
  createUser,
  suffix,
  type AccountBody,
  type CreatedApiKey,
  type CreatedUser,
  type Tenant,
} from '../support/factories';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';

/** [first, last] address of an IPv4 CIDR as numbers. */
function range(cidr: string): [number, number] {
  const [ip, prefix] = cidr.split('/');
  const start = ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  return [start, start + 2 ** (32 - Number(prefix)) - 1];
}

const overlaps = (a: string, b: string): boolean => {
  const [a0, a1] = range(a);
  const [b0, b1] = range(b);
  return a0 <= b1 && b0 <= a1;
};

const names = (res: request.Response): string[] =>
  (res.body.items as AccountBody[]).map((a) => a.name).sort();

describe('Tenant isolation (accounts, users, API keys)', () => {
  let api: TestApi;
  let root: string;
  let rootAccountId: string;
  /** Sibling tenants: children of the root account, each with its own admin. */
  let a: Tenant;
  let b: Tenant;
  /** A's child and grandchild. */
  let a1: AccountBody;
  let a1a: AccountBody;
  /** B's records that A must never reach. */
  let b1: AccountBody;
  let bUser: CreatedUser;
  let bKey: CreatedApiKey;

  const as = (token: string) => ({
    get: (path: string) => request(api.url).get(path).set(bearer(token)),
    post: (path: string, body: object) => request(api.url).post(path).set(bearer(token)).send(body),
    put: (path: string, body: object) => request(api.url).put(path).set(bearer(token)).send(body),
    delete: (path: string) => request(api.url).delete(path).set(bearer(token)),
  });

  beforeAll(async () => {
    api = await startTestApi();
    root = await login(api);
    rootAccountId = (await as(root).get('/v1/authentication/info').expect(200)).body.scopeId;
    a = await createTenant(api, root, { name: `tenant-a-${suffix()}` });
    b = await createTenant(api, root, { name: `tenant-b-${suffix()}` });
    a1 = await createAccount(api, a.admin.token, { name: `a1-${suffix()}` });
    a1a = await createAccount(api, a.admin.token, { name: `a1a-${suffix()}`, parentScope: a1.id });
    b1 = await createAccount(api, b.admin.token, { name: `b1-${suffix()}`, description: 'b1 original' });
    bUser = await createUser(api, b.admin.token, '_', 'viewer');
    bKey = await createApiKey(api, b.admin.token, '_', 'viewer');
  });

  afterAll(async () => {
    await api?.stop();
  });

  describe("another tenant's scope", () => {
    it.each(['accounts', 'users', 'apikeys'])(
      "should return 403 when A lists B's %s with B's scope id",
      async (resource) => {
        expectError(await as(a.admin.token).get(`/v1/${b.account.id}/${resource}`), 403, 'FORBIDDEN');
      },
    );

    it.each(['accounts', 'users', 'apikeys'])(
      'should return the same 403 for an unknown scope id as for an existing foreign one (%s)',
      async (resource) => {
        const foreign = await as(a.admin.token).get(`/v1/${b.account.id}/${resource}`);
        const unknown = await as(a.admin.token).get(`/v1/${randomUUID()}/${resource}`);
        expectError(unknown, 403, 'FORBIDDEN');
        expect(unknown.body).toEqual(foreign.body);
      },
    );

    it("should return 403 when A acts in its parent's scope, and 404 when it reads the parent by id", async () => {
      expectError(await as(a.admin.token).get(`/v1/${rootAccountId}/users`), 403, 'FORBIDDEN');
      expectError(await as(a.admin.token).get(`/v1/_/accounts/${rootAccountId}`), 404, 'NOT_FOUND');
    });

    it("should return 403 when a child account's admin acts in its parent's scope", async () => {
      const a1Admin = await createUser(api, a.admin.token, a1.id, 'admin');
      expectError(await as(a1Admin.token).get(`/v1/${a.account.id}/users`), 403, 'FORBIDDEN');
      expectError(await as(a1Admin.token).get(`/v1/${a.account.id}/accounts`), 403, 'FORBIDDEN');
      expectError(await as(a1Admin.token).get(`/v1/_/accounts/${a.account.id}`), 404, 'NOT_FOUND');
    });

    it('should return 403 when A creates records in B, and create nothing', async () => {
      const username = `intruder-${suffix()}`;
      const accountName = `intruder-${suffix()}`;
      const keyName = `intruder-${suffix()}`;
      const t = as(a.admin.token);
      const scope = `/v1/${b.account.id}`;
      expectError(
        await t.post(`${scope}/users`, { username, password: 'long-enough-password', role: 'admin' }),
        403,
        'FORBIDDEN',
      );
      expectError(await t.post(`${scope}/accounts`, { name: accountName }), 403, 'FORBIDDEN');
      expectError(await t.post(`${scope}/apikeys`, { name: keyName, role: 'admin' }), 403, 'FORBIDDEN');

      const rootView = as(root);
      expect((await rootView.get(`${scope}/users?username=${username}`).expect(200)).body.size).toBe(0);
      expect(
        (await rootView.get(`/v1/_/accounts?recursive=true&name=${accountName}`).expect(200)).body.size,
      ).toBe(0);
      const keys = await rootView.get(`${scope}/apikeys?limit=500`).expect(200);
      expect((keys.body.items as Array<{ name: string }>).map((k) => k.name)).not.toContain(keyName);
      expectError(
        await request(api.url)
          .post('/v1/authentication/user')
          .send({ username, password: 'long-enough-password' }),
        401,
        'AUTH_FAILED',
      );
      await login(api);
    });
  });

  describe("another tenant's records by id", () => {
    const records = () => [
      { what: "B's child account", path: `accounts/${b1.id}` },
      { what: "B's own account", path: `accounts/${b.account.id}` },
      { what: "B's user", path: `users/${bUser.id}` },
      { what: "B's API key", path: `apikeys/${bKey.id}` },
    ];

    it('should return 404 when A reads them in its own scope and 403 in B’s', async () => {
      for (const { what, path } of records()) {
        const own = await as(a.admin.token).get(`/v1/_/${path}`);
        expect({ what, status: own.status }).toEqual({ what, status: 404 });
        expectError(own, 404, 'NOT_FOUND');
        expectError(await as(a.admin.token).get(`/v1/${a.account.id}/${path}`), 404, 'NOT_FOUND');
        expectError(await as(a.admin.token).get(`/v1/${b.account.id}/${path}`), 403, 'FORBIDDEN');
      }
    });

    it('should return 404 when A updates them in its own scope and 403 in B’s, and change nothing', async () => {
      const account = (await as(b.admin.token).get(`/v1/_/accounts/${b1.id}`).expect(200)).body;
      const user = (await as(b.admin.token).get(`/v1/_/users/${bUser.id}`).expect(200)).body;
      const t = as(a.admin.token);
      for (const scope of ['_', a.account.id]) {
        expectError(
          await t.put(`/v1/${scope}/accounts/${b1.id}`, { description: 'hacked', optlock: account.optlock }),
          404,
          'NOT_FOUND',
        );
        expectError(
          await t.put(`/v1/${scope}/users/${bUser.id}`, {
            role: 'admin',
            enabled: false,
            optlock: user.optlock,
          }),
          404,
          'NOT_FOUND',
        );
      }
      expectError(
        await t.put(`/v1/${b.account.id}/accounts/${b1.id}`, {
          description: 'hacked',
          optlock: account.optlock,
        }),
        403,
        'FORBIDDEN',
      );
      expectError(
        await t.put(`/v1/${b.account.id}/users/${bUser.id}`, { role: 'admin', optlock: user.optlock }),
        403,
        'FORBIDDEN',
      );
      expect((await as(b.admin.token).get(`/v1/_/accounts/${b1.id}`).expect(200)).body).toEqual(account);
      expect((await as(b.admin.token).get(`/v1/_/users/${bUser.id}`).expect(200)).body).toEqual(user);
      await as(bUser.token).get('/v1/authentication/info').expect(200);
    });

    it('should return 404 when A deletes them in its own scope and 403 in B’s, and delete nothing', async () => {
      const t = as(a.admin.token);
      for (const path of [`accounts/${b1.id}`, `users/${bUser.id}`, `apikeys/${bKey.id}`]) {
        expectError(await t.delete(`/v1/_/${path}`), 404, 'NOT_FOUND');
        expectError(await t.delete(`/v1/${b.account.id}/${path}`), 403, 'FORBIDDEN');
        await as(b.admin.token).get(`/v1/_/${path}`).expect(200);
      }
      await as(bUser.token).get('/v1/authentication/info').expect(200);
    });

    it('should return 404 for an unknown random id inside an allowed scope', async () => {
      for (const resource of ['accounts', 'users', 'apikeys']) {
        expectError(await as(a.admin.token).get(`/v1/_/${resource}/${randomUUID()}`), 404, 'NOT_FOUND');
      }
    });
  });

  describe("another tenant's records by filter", () => {
    it("should return nothing when A filters its users by B's username", async () => {
      const res = await as(a.admin.token).get(`/v1/_/users?username=${bUser.username}&askTotalCount=true`);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ items: [], size: 0, limitExceeded: false, totalCount: 0 });
    });

    it("should return nothing when A filters its accounts by the name of B's accounts", async () => {
      for (const name of [b1.name, b.account.name]) {
        for (const recursive of ['false', 'true']) {
          const res = await as(a.admin.token).get(`/v1/_/accounts?name=${name}&recursive=${recursive}`);
          expect(res.status).toBe(200);
          expect(res.body.items).toEqual([]);
        }
      }
    });

    it("should list and count only the caller's own users and API keys", async () => {
      const users = await as(a.admin.token).get('/v1/_/users?askTotalCount=true').expect(200);
      expect((users.body.items as Array<{ scopeId: string }>).every((u) => u.scopeId === a.account.id)).toBe(
        true,
      );
      expect(users.body.totalCount).toBe(users.body.size);
      const keys = await as(a.admin.token).get('/v1/_/apikeys?askTotalCount=true').expect(200);
      expect(keys.body).toEqual({ items: [], size: 0, limitExceeded: false, totalCount: 0 });
    });
  });

  describe('a parent account admin in child accounts', () => {
    it("should list, create, update and delete a child's users with the child id as scope", async () => {
      const t = as(root);
      const listed = await t.get(`/v1/${a.account.id}/users`).expect(200);
      expect((listed.body.items as Array<{ id: string }>).map((u) => u.id)).toContain(a.admin.id);

      const user = await createUser(api, root, a.account.id, 'viewer');
      expect(user.scopeId).toBe(a.account.id);
      const me = await as(user.token).get('/v1/authentication/info').expect(200);
      expect(me.body.scopeId).toBe(a.account.id);
      await as(a.admin.token).get(`/v1/_/users/${user.id}`).expect(200);

      const updated = await t
        .put(`/v1/${a.account.id}/users/${user.id}`, { role: 'operator', optlock: user.optlock })
        .expect(200);
      expect(updated.body.role).toBe('operator');
      await t.delete(`/v1/${a.account.id}/users/${user.id}`).expect(204);
      await as(a.admin.token).get(`/v1/_/users/${user.id}`).expect(404);
    });

    it("should create API keys in a child account that act in the child's scope", async () => {
      const key = await createApiKey(api, root, a.account.id, 'viewer');
      expect(key.scopeId).toBe(a.account.id);
      const signedIn = await request(api.url)
        .post('/v1/authentication/apikey')
        .send({ apiKey: key.apiKey })
        .expect(200);
      expect(signedIn.body.scopeId).toBe(a.account.id);
      expectError(await as(signedIn.body.tokenId).get(`/v1/${b.account.id}/users`), 403, 'FORBIDDEN');
      await as(a.admin.token).delete(`/v1/_/apikeys/${key.id}`).expect(204);
    });

    it('should read and update descendants from any ancestor scope', async () => {
      await as(root).get(`/v1/${a.account.id}/accounts/${a1a.id}`).expect(200);
      await as(root).get(`/v1/${a1.id}/accounts/${a1a.id}`).expect(200);
      await as(a.admin.token).get(`/v1/_/accounts/${a1a.id}`).expect(200);
      const user = await createUser(api, a.admin.token, a1a.id, 'viewer');
      expect(user.scopeId).toBe(a1a.id);
    });
  });

  describe('recursive listing', () => {
    it('should list direct children only, or with recursive=true all descendants within the subtree', async () => {
      const t = as(a.admin.token);
      expect(names(await t.get('/v1/_/accounts').expect(200))).toEqual([a1.name]);
      expect(names(await t.get('/v1/_/accounts?recursive=true').expect(200))).toEqual(
        [a1.name, a1a.name].sort(),
      );
      expect(names(await t.get(`/v1/${a1.id}/accounts?recursive=true`).expect(200))).toEqual([a1a.name]);
      expect(names(await as(b.admin.token).get('/v1/_/accounts?recursive=true').expect(200))).toEqual([
        b1.name,
      ]);
    });

    it('should list the whole tree below the root, without the root itself', async () => {
      const all = names(await as(root).get('/v1/_/accounts?recursive=true&limit=500').expect(200));
      expect(all).toEqual(
        expect.arrayContaining([a.account.name, a1.name, a1a.name, b.account.name, b1.name]),
      );
      expect(all).not.toContain('root');
      const direct = names(await as(root).get('/v1/_/accounts?limit=500').expect(200));
      expect(direct).toEqual(expect.arrayContaining([a.account.name, b.account.name]));
      expect(direct).not.toContain(a1.name);
    });

    it('should page a recursive list with limitExceeded and totalCount', async () => {
      const t = as(a.admin.token);
      const first = await t.get('/v1/_/accounts?recursive=true&limit=1&askTotalCount=true').expect(200);
      expect(first.body).toMatchObject({ size: 1, limitExceeded: true, totalCount: 2 });
      const second = await t.get('/v1/_/accounts?recursive=true&limit=1&offset=1').expect(200);
      expect(second.body).toMatchObject({ size: 1, limitExceeded: false });
      expect(second.body.totalCount).toBeUndefined();
      expect([...names(first), ...names(second)].sort()).toEqual([a1.name, a1a.name].sort());
    });
  });

  describe('account lifecycle', () => {
    it('should return 409 when deleting an account that has children, and delete it once they are gone', async () => {
      const parent = await createAccount(api, root);
      const child = await createAccount(api, root, { parentScope: parent.id });
      const refused = await as(root).delete(`/v1/_/accounts/${parent.id}`);
      expectError(refused, 409, 'CONFLICT');
      await as(root).get(`/v1/_/accounts/${parent.id}`).expect(200);
      await as(root).get(`/v1/_/accounts/${child.id}`).expect(200);
      await as(root).delete(`/v1/_/accounts/${child.id}`).expect(204);
      await as(root).delete(`/v1/_/accounts/${parent.id}`).expect(204);
      expectError(await as(root).get(`/v1/_/accounts/${parent.id}`), 404, 'NOT_FOUND');
    });

    it('should return 409 when an admin deletes the account it acts in', async () => {
      expectError(await as(a.admin.token).delete(`/v1/_/accounts/${a.account.id}`), 409, 'CONFLICT');
      await as(root).get(`/v1/_/accounts/${a.account.id}`).expect(200);
    });

    it("should refuse a deleted account's users and API keys", async () => {
      const tenant = await createTenant(api, root);
      const key = await createApiKey(api, tenant.admin.token, '_', 'viewer');
      await as(root).delete(`/v1/_/accounts/${tenant.account.id}`).expect(204);
      expectError(await as(tenant.admin.token).get('/v1/authentication/info'), 401, 'UNAUTHORIZED');
      expectError(
        await request(api.url).post('/v1/authentication/apikey').send({ apiKey: key.apiKey }),
        401,
        'AUTH_FAILED',
      );
      await login(api);
    });

    it('should return 409 OPTLOCK_CONFLICT for a stale account optlock and keep the current value', async () => {
      const account = await createAccount(api, root, { description: 'v1' });
      const first = await as(root)
        .put(`/v1/_/accounts/${account.id}`, { description: 'v2', optlock: account.optlock })
        .expect(200);
      expect(first.body.optlock).toBe(account.optlock + 1);
      expect(first.body.modifiedBy).toBe((await as(root).get('/v1/authentication/info')).body.userId);
      const stale = await as(root).put(`/v1/_/accounts/${account.id}`, {
        description: 'v3',
        optlock: account.optlock,
      });
      expectError(stale, 409, 'OPTLOCK_CONFLICT');
      const read = await as(root).get(`/v1/_/accounts/${account.id}`).expect(200);
      expect(read.body).toMatchObject({ description: 'v2', optlock: first.body.optlock });
    });

    it('should return 409 OPTLOCK_CONFLICT for a stale user optlock and keep the current value', async () => {
      const user = await createUser(api, a.admin.token, '_', 'viewer');
      await as(a.admin.token)
        .put(`/v1/_/users/${user.id}`, { role: 'operator', optlock: user.optlock })
        .expect(200);
      const stale = await as(a.admin.token).put(`/v1/_/users/${user.id}`, {
        role: 'admin',
        optlock: user.optlock,
      });
      expectError(stale, 409, 'OPTLOCK_CONFLICT');
      const read = await as(a.admin.token).get(`/v1/_/users/${user.id}`).expect(200);
      expect(read.body).toMatchObject({ role: 'operator', optlock: user.optlock + 1 });
    });

    it('should return 409 ENTRY_EXISTS when another tenant already uses the account name', async () => {
      const res = await as(a.admin.token).post('/v1/_/accounts', { name: b1.name });
      expectError(res, 409, 'ENTRY_EXISTS');
    });
  });

  describe('VPN subnets', () => {
    const allAccounts = async (): Promise<AccountBody[]> => {
      const rootAccount = (await as(root).get(`/v1/_/accounts/${rootAccountId}`).expect(200)).body;
      const res = await as(root).get('/v1/_/accounts?recursive=true&limit=500').expect(200);
      expect(res.body.limitExceeded).toBe(false);
      return [rootAccount, ...(res.body.items as AccountBody[])];
    };

    it('should allocate unique, non-overlapping subnets to 10 accounts created concurrently', async () => {
      // An explicit subnet just past the allocated ones: the allocator must skip it.
      const existing = await allAccounts();
      const highest = Math.max(...existing.map((acc) => range(acc.vpnSubnet)[1]));
      const next = highest + 1 + 4096; // leave one /20 gap before it
      const explicit = `${[24, 16, 8, 0].map((s) => (next >>> s) & 255).join('.')}/20`;
      await createAccount(api, root, { vpnSubnet: explicit });

      const created = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          as(root).post(i % 2 ? '/v1/_/accounts' : `/v1/${a.account.id}/accounts`, {
            name: `burst-${suffix()}`,
          }),
        ),
      );
      expect(created.map((r) => r.status)).toEqual(Array(10).fill(201));
      const subnets = created.map((r) => r.body.vpnSubnet as string);
      expect(new Set(subnets).size).toBe(10);
      for (const s of subnets) {
        expect(s).toMatch(/^10\.20[0-7]\.\d+\.\d+\/20$/);
        expect(overlaps(s, '10.200.0.0/13')).toBe(true);
      }
      const everything = await allAccounts();
      for (let i = 0; i < everything.length; i++) {
        for (let j = i + 1; j < everything.length; j++) {
          const [x, y] = [everything[i], everything[j]];
          expect({ pair: [x.name, y.name], overlap: overlaps(x.vpnSubnet, y.vpnSubnet) }).toEqual({
            pair: [x.name, y.name],
            overlap: false,
          });
        }
      }
    });

    it.each([
      ['the same network', (s: string) => s],
      ['a network inside it', (s: string) => `${s.split('/')[0]}/24`],
      ['a network around it', (s: string) => `${s.split('.').slice(0, 2).join('.')}.0.0/16`],
    ])(
      'should return 409 ENTRY_EXISTS for an explicit vpnSubnet overlapping another account: %s',
      async (_, make) => {
        const name = `overlap-${suffix()}`;
        const res = await as(root).post('/v1/_/accounts', { name, vpnSubnet: make(a.account.vpnSubnet) });
        expectError(res, 409, 'ENTRY_EXISTS');
        expect((await as(root).get(`/v1/_/accounts?recursive=true&name=${name}`).expect(200)).body.size).toBe(
          0,
        );
      },
    );

    it('should accept an explicit vpnSubnet that overlaps nothing', async () => {
      const account = await createAccount(api, root, { vpnSubnet: '192.168.77.0/24' });
      expect(account.vpnSubnet).toBe('192.168.77.0/24');
    });
  });

  describe('bad input', () => {
    it('should change nothing when an account update carries an unknown field', async () => {
      const before = (await as(a.admin.token).get(`/v1/_/accounts/${a1.id}`).expect(200)).body;
      const res = await as(a.admin.token).put(`/v1/_/accounts/${a1.id}`, {
        description: 'changed',
        name: 'renamed',
        optlock: before.optlock,
      });
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect((await as(a.admin.token).get(`/v1/_/accounts/${a1.id}`).expect(200)).body).toEqual(before);
    });

    it('should change nothing when an account update has an invalid optlock or description', async () => {
      const before = (await as(a.admin.token).get(`/v1/_/accounts/${a1.id}`).expect(200)).body;
      for (const body of [
        { description: 'changed' },
        { description: 'changed', optlock: 'x' },
        { description: 'x'.repeat(1025), optlock: before.optlock },
        { description: 42, optlock: before.optlock },
      ]) {
        expectError(await as(a.admin.token).put(`/v1/_/accounts/${a1.id}`, body), 400, 'INVALID_ARGUMENT');
      }
      expect((await as(a.admin.token).get(`/v1/_/accounts/${a1.id}`).expect(200)).body).toEqual(before);
    });

    it('should change nothing when a user update is invalid', async () => {
      const user = await createUser(api, a.admin.token, '_', 'viewer');
      const before = (await as(a.admin.token).get(`/v1/_/users/${user.id}`).expect(200)).body;
      for (const body of [
        { role: 'superuser', optlock: before.optlock },
        { enabled: 'no', optlock: before.optlock },
        { password: 'short', optlock: before.optlock },
        { username: 'renamed', optlock: before.optlock },
        { role: 'admin', scopeId: b.account.id, optlock: before.optlock },
      ]) {
        expectError(await as(a.admin.token).put(`/v1/_/users/${user.id}`, body), 400, 'INVALID_ARGUMENT');
      }
      expect((await as(a.admin.token).get(`/v1/_/users/${user.id}`).expect(200)).body).toEqual(before);
      await as(user.token).get('/v1/authentication/info').expect(200);
    });

    it('should create nothing when an account or user creation is invalid', async () => {
      const count = async (path: string) =>
        (await as(a.admin.token).get(`${path}?askTotalCount=true`).expect(200)).body.totalCount as number;
      const accounts = await count('/v1/_/accounts');
      const users = await count('/v1/_/users');
      for (const body of [{ name: 'Bad_Name' }, { name: `ok-${suffix()}`, vpnSubnet: '10.0.0.0/40' }]) {
        expectError(await as(a.admin.token).post('/v1/_/accounts', body), 400, 'INVALID_ARGUMENT');
      }
      expectError(
        await as(a.admin.token).post('/v1/_/accounts', { name: `ok-${suffix()}`, scopeId: b.account.id }),
        400,
        'INVALID_ARGUMENT',
      );
      for (const body of [
        { username: `u-${suffix()}`, password: 'long-enough-password', role: 'root' },
        { username: 'x', password: 'long-enough-password', role: 'viewer' },
        { username: `u-${suffix()}`, password: 'short', role: 'viewer' },
        {
          username: `u-${suffix()}`,
          password: 'long-enough-password',
          role: 'viewer',
          scopeId: b.account.id,
        },
      ]) {
        expectError(await as(a.admin.token).post('/v1/_/users', body), 400, 'INVALID_ARGUMENT');
      }
      expect(await count('/v1/_/accounts')).toBe(accounts);
      expect(await count('/v1/_/users')).toBe(users);
    });
  });
});
