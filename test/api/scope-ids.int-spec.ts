import request from 'supertest';
import {
  createAccount,
  createApiKey,
  createTenant,
  createUser,
  suffix,
  type Tenant,
} from '../support/factories';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';

/**
 * Ids are normalised where they enter (attack run, finding C): an upper-case spelling of a scope
 * or path id is the same id, so no comparison sees two spellings of one account.
 */
describe('Id spelling', () => {
  let api: TestApi;
  let root: string;
  let tenant: Tenant;

  beforeAll(async () => {
    api = await startTestApi();
    root = await login(api);
    tenant = await createTenant(api, root, { name: `ids-${suffix()}` });
  });

  afterAll(async () => {
    await api?.stop();
  });

  const as = (token: string) => ({
    get: (path: string) => request(api.url).get(path).set(bearer(token)),
    delete: (path: string) => request(api.url).delete(path).set(bearer(token)),
  });

  it.each([
    ['the scope in upper case', (id: string) => `/v1/${id.toUpperCase()}/accounts/${id}`],
    ['the account id in upper case', (id: string) => `/v1/${id}/accounts/${id.toUpperCase()}`],
    ['both in upper case', (id: string) => `/v1/${id.toUpperCase()}/accounts/${id.toUpperCase()}`],
    ['the scope as _ and the id in upper case', (id: string) => `/v1/_/accounts/${id.toUpperCase()}`],
  ])(
    'should refuse to delete the caller’s own account with %s (409), keeping its users and keys',
    async (_w, path) => {
      const key = await createApiKey(api, tenant.admin.token, '_', 'viewer');
      const res = await as(tenant.admin.token).delete(path(tenant.account.id));
      expectError(res, 409, 'CONFLICT');
      await as(root).get(`/v1/_/accounts/${tenant.account.id}`).expect(200);
      await as(tenant.admin.token).get('/v1/authentication/info').expect(200);
      await as(root).get(`/v1/${tenant.account.id}/apikeys/${key.id}`).expect(200);
    },
  );

  it('should answer an upper-case scope and path id with the canonical (lower-case) ids', async () => {
    const child = await createAccount(api, tenant.admin.token);
    const user = await createUser(api, tenant.admin.token, '_', 'viewer');
    const upperScope = tenant.account.id.toUpperCase();
    const read = await as(tenant.admin.token)
      .get(`/v1/${upperScope}/accounts/${child.id.toUpperCase()}`)
      .expect(200);
    expect(read.body.id).toBe(child.id);
    expect(read.body.scopeId).toBe(tenant.account.id);
    const list = await as(tenant.admin.token).get(`/v1/${upperScope}/users`).expect(200);
    expect((list.body.items as Array<{ id: string }>).map((u) => u.id)).toContain(user.id);
    const one = await as(tenant.admin.token)
      .get(`/v1/${upperScope}/users/${user.id.toUpperCase()}`)
      .expect(200);
    expect(one.body.id).toBe(user.id);
    expect(one.body.scopeId).toBe(tenant.account.id);
  });

  it("should still refuse another tenant's scope in any spelling", async () => {
    const other = await createTenant(api, root, { name: `ids-other-${suffix()}` });
    for (const spelling of [other.account.id, other.account.id.toUpperCase()]) {
      expectError(await as(tenant.admin.token).get(`/v1/${spelling}/users`), 403, 'FORBIDDEN');
    }
  });

  it('should refuse an id that only looks like a UUID', async () => {
    const bad = `${tenant.account.id.slice(0, -1)}g`;
    expectError(await as(tenant.admin.token).get(`/v1/${bad}/users`), 400, 'INVALID_ARGUMENT');
    expectError(await as(tenant.admin.token).get(`/v1/_/users/${bad}`), 400, 'INVALID_ARGUMENT');
  });
});
