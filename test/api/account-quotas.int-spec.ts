import request from 'supertest';
import {
  createAccount,
  createApiKey,
  createTenant,
  loginApiKey,
  suffix,
  type Tenant,
} from '../support/factories';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';

/**
 * The global VPN address space and sub-account quotas (attack run, finding B): only admins of
 * the root account choose a vpnSubnet; every other account is allocated one; an account may
 * have a bounded number of children and of accounts below it; a tenant's errors say nothing
 * about what other tenants hold.
 */
describe('Account quotas and the VPN address space', () => {
  const post = (api: TestApi, token: string, scope: string, body: object) =>
    request(api.url).post(`/v1/${scope}/accounts`).set(bearer(token)).send(body);

  /** Text that would tell a tenant about the address space or other tenants. */
  const expectNothingAbout = (res: request.Response, secrets: string[]) => {
    for (const secret of secrets) expect(res.text).not.toContain(secret);
    expect(res.text).not.toMatch(/\d+\.\d+\.\d+\.\d+/);
  };

  describe('quotas (default 25 children, 30 accounts per subtree configured)', () => {
    let api: TestApi;
    let root: string;
    let a: Tenant;
    let b: Tenant;

    beforeAll(async () => {
      api = await startTestApi({ VPN_SUBNET_PREFIX: '24', ACCOUNT_MAX_DESCENDANTS: '30' });
      root = await login(api);
      a = await createTenant(api, root, { name: `quota-a-${suffix()}` });
      b = await createTenant(api, root, { name: `quota-b-${suffix()}` });
    });

    afterAll(async () => {
      await api?.stop();
    });

    it.each([
      ['a network outside the supernet', '172.16.0.0/12'],
      ['a free block of the supernet', '10.207.255.0/24'],
      ['the subnet of another tenant', 'B'],
    ])('should refuse a vpnSubnet chosen by a tenant admin: %s', async (_what, subnet) => {
      const vpnSubnet = subnet === 'B' ? b.account.vpnSubnet : subnet;
      const name = `squat-${suffix()}`;
      const res = await post(api, a.admin.token, '_', { name, vpnSubnet });
      expectError(res, 403, 'FORBIDDEN');
      expect(res.body.details).toContain('vpnSubnet');
      expectNothingAbout(res, [b.account.name, b.account.id]);
      // Also with an admin API key of the tenant.
      const key = await loginApiKey(api, (await createApiKey(api, a.admin.token, '_', 'admin')).apiKey);
      expectError(await post(api, key, '_', { name, vpnSubnet }), 403, 'FORBIDDEN');
      const found = await request(api.url)
        .get(`/v1/_/accounts?recursive=true&name=${name}`)
        .set(bearer(root))
        .expect(200);
      expect(found.body.size).toBe(0);
    });

    it('should let an admin of the root account choose a vpnSubnet, also for a sub-account of a tenant', async () => {
      const child = await createAccount(api, root, {
        parentScope: a.account.id,
        vpnSubnet: '192.168.91.0/24',
      });
      expect(child.vpnSubnet).toBe('192.168.91.0/24');
      const key = await loginApiKey(api, (await createApiKey(api, root, '_', 'admin')).apiKey);
      const res = await post(api, key, '_', { name: `chosen-${suffix()}`, vpnSubnet: '192.168.92.0/24' });
      expect(res.status).toBe(201);
      await request(api.url).delete(`/v1/_/accounts/${child.id}`).set(bearer(root)).expect(204);
    });

    it('should refuse a 26th direct child account with 409, naming the quota only', async () => {
      const existing = (
        await request(api.url).get('/v1/_/accounts?askTotalCount=true').set(bearer(a.admin.token))
      ).body.totalCount as number;
      for (let i = existing; i < 25; i++) await createAccount(api, a.admin.token);
      const res = await post(api, a.admin.token, '_', { name: `child-26-${suffix()}` });
      expectError(res, 409, 'CONFLICT');
      expect(res.body.details).toContain('25');
      expectNothingAbout(res, [b.account.name, b.account.id]);
      // The root account creates the tenants: it has no children quota.
      for (let i = 0; i < 26; i++) await createAccount(api, root, { name: `tenant-${i}-${suffix()}` });
    });

    it('should refuse an account beyond the subtree quota, at any depth below the tenant', async () => {
      const children = (await request(api.url).get('/v1/_/accounts?limit=500').set(bearer(a.admin.token)))
        .body.items as Array<{ id: string }>;
      const total = (
        await request(api.url)
          .get('/v1/_/accounts?recursive=true&askTotalCount=true')
          .set(bearer(a.admin.token))
      ).body.totalCount as number;
      for (let i = total; i < 30; i++)
        await createAccount(api, a.admin.token, { parentScope: children[0].id });
      const res = await post(api, a.admin.token, children[1].id, { name: `deep-${suffix()}` });
      expectError(res, 409, 'CONFLICT');
      expect(res.body.details).toContain('30');
      expectNothingAbout(res, [b.account.name, b.account.id]);
      // Another tenant is not affected.
      await createAccount(api, b.admin.token);
    });
  });

  describe('a small supernet (16 blocks)', () => {
    let api: TestApi;
    let root: string;
    let a: Tenant;
    let b: Tenant;

    beforeAll(async () => {
      api = await startTestApi({ VPN_SUPERNET: '10.200.0.0/16', VPN_SUBNET_PREFIX: '20' });
      root = await login(api);
      a = await createTenant(api, root, { name: `small-a-${suffix()}` });
      b = await createTenant(api, root, { name: `small-b-${suffix()}` });
    });

    afterAll(async () => {
      await api?.stop();
    });

    it('should not let one tenant take the blocks the root account needs for new tenants', async () => {
      const statuses: number[] = [];
      let refused: request.Response | undefined;
      for (let i = 0; i < 16 && !refused; i++) {
        const res = await post(api, a.admin.token, '_', { name: `greedy-${i}-${suffix()}` });
        statuses.push(res.status);
        if (res.status !== 201) refused = res;
      }
      expect(refused).toBeDefined();
      expectError(refused!, 409, 'CONFLICT');
      // "No space" says nothing about the supernet, its blocks or what other tenants hold.
      expectNothingAbout(refused!, [b.account.name, b.account.id, '/16', '/20', '10.200']);
      expect(statuses.filter((s) => s === 201).length).toBeGreaterThan(0);
      // The other tenant gets the same answer, not a hint at A's accounts.
      const other = await post(api, b.admin.token, '_', { name: `late-${suffix()}` });
      expectError(other, 409, 'CONFLICT');
      expect(other.body).toEqual(refused!.body);
      // The root account can still create a tenant.
      const tenant = await post(api, root, '_', { name: `new-tenant-${suffix()}` });
      expect(tenant.status).toBe(201);
      expect(tenant.body.vpnSubnet).toMatch(/^10\.200\.\d+\.0\/20$/);
    });
  });
});
