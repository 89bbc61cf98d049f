import { randomBytes, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import request from 'supertest';
import { createDevice } from '../support/device-factories';
import { createApiKey, createTenant, createUser, loginApiKey, type Tenant } from '../support/factories';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, TEST_ADMIN_PASSWORD, type TestApi } from '../support/test-api';

/**
 * GET /v1/{scopeId}/devices/{id}/vpn reads the token row in its own statement (one round trip)
 * instead of in the guard: the same refusals, in the same order, as every other route — and a
 * revocation counts on the very next request, on every instance sharing the database.
 */
describe('Status read: the token checked in the read', () => {
  const secret = randomBytes(32).toString('hex');
  let api: TestApi;
  let other: TestApi;
  let adminToken: string;
  let deviceId: string;
  let tenant: Tenant;
  let tenantDeviceId: string;

  beforeAll(async () => {
    api = await startTestApi({ JWT_SECRET: secret });
    // A second instance on the same database, as behind a load balancer.
    other = await startTestApi({ JWT_SECRET: secret }, { database: api.db });
    adminToken = await login(api);
    deviceId = (await createDevice(api, adminToken)).id;
    tenant = await createTenant(api, adminToken);
    tenantDeviceId = (await createDevice(api, tenant.admin.token, tenant.account.id)).id;
  });

  afterAll(async () => {
    await other?.stop();
    await api?.stop();
  });

  const status = (url: string, token: string | null, scope = '_', id = deviceId) => {
    const req = request(url).get(`/v1/${scope}/devices/${id}/vpn`);
    return token ? req.set(bearer(token)) : req;
  };
  const signIn = async (username: string, password: string): Promise<string> =>
    (await request(api.url).post('/v1/authentication/user').send({ username, password }).expect(200)).body
      .tokenId as string;

  it('should answer the status to a live token on either instance', async () => {
    const res = await status(api.url, adminToken).expect(200);
    expect(res.body).toMatchObject({ connected: false, status: 'idle', statusCode: '000' });
    await status(other.url, adminToken).expect(200);
  });

  it('should refuse a logged-out token on the very next request, on the other instance too', async () => {
    const token = await signIn('admin', TEST_ADMIN_PASSWORD);
    await status(other.url, token).expect(200);
    await request(api.url).post('/v1/authentication/logout').set(bearer(token)).expect(204);
    expectError(await status(other.url, token), 401, 'UNAUTHORIZED');
    expectError(await status(api.url, token), 401, 'UNAUTHORIZED');
  });

  it('should refuse the tokens of a disabled user at once, on both instances', async () => {
    const user = await createUser(api, adminToken, '_', 'viewer');
    await status(other.url, user.token).expect(200);
    await request(api.url)
      .put(`/v1/_/users/${user.id}`)
      .set(bearer(adminToken))
      .send({ enabled: false, optlock: user.optlock })
      .expect(200);
    expectError(await status(other.url, user.token), 401, 'UNAUTHORIZED');
    expectError(await status(api.url, user.token), 401, 'UNAUTHORIZED');
  });

  it('should refuse the tokens of a deleted user and of a deleted API key', async () => {
    const user = await createUser(api, adminToken, '_', 'operator');
    const key = await createApiKey(api, adminToken, '_', 'viewer');
    const keyToken = await loginApiKey(api, key.apiKey);
    await status(api.url, user.token).expect(200);
    await status(api.url, keyToken).expect(200);
    await request(api.url).delete(`/v1/_/users/${user.id}`).set(bearer(adminToken)).expect(204);
    await request(api.url).delete(`/v1/_/apikeys/${key.id}`).set(bearer(adminToken)).expect(204);
    expectError(await status(other.url, user.token), 401, 'UNAUTHORIZED');
    expectError(await status(other.url, keyToken), 401, 'UNAUTHORIZED');
  });

  it('should answer with the role the user has now', async () => {
    const user = await createUser(api, adminToken, '_', 'viewer');
    await request(api.url)
      .put(`/v1/_/users/${user.id}`)
      .set(bearer(adminToken))
      .send({ role: 'operator', optlock: user.optlock })
      .expect(200);
    // Every role may read statuses; the principal the read completes with is the current one.
    await status(other.url, user.token).expect(200);
    const info = await request(other.url).get('/v1/authentication/info').set(bearer(user.token)).expect(200);
    expect(info.body.role).toBe('operator');
  });

  it('should refuse a missing, forged, expired or never-issued token with 401', async () => {
    expectError(await status(api.url, null), 401, 'UNAUTHORIZED');
    const claims = jwt.decode(adminToken) as Record<string, unknown>;
    const forged = jwt.sign({ ...claims }, 'another-secret', { algorithm: 'HS256' });
    expectError(await status(api.url, forged), 401, 'UNAUTHORIZED');
    const expired = jwt.sign({ ...claims, exp: Math.floor(Date.now() / 1000) - 10 }, secret, {
      algorithm: 'HS256',
    });
    expectError(await status(api.url, expired), 401, 'UNAUTHORIZED');
    const unknown = jwt.sign({ ...claims, jti: randomUUID() }, secret, { algorithm: 'HS256' });
    expectError(await status(api.url, unknown), 401, 'UNAUTHORIZED');
  });

  it('should check the token before the scope and the device id, as every route does', async () => {
    const token = await signIn('admin', TEST_ADMIN_PASSWORD);
    await request(api.url).post('/v1/authentication/logout').set(bearer(token)).expect(204);
    expectError(await status(api.url, token, 'not-a-scope'), 401, 'UNAUTHORIZED');
    expectError(await status(api.url, token, '_', 'not-a-uuid'), 401, 'UNAUTHORIZED');
    expectError(await status(api.url, token, '_', randomUUID()), 401, 'UNAUTHORIZED');
  });

  it('should answer 400 for a malformed scope or device id, 404 for an unknown device', async () => {
    expectError(await status(api.url, adminToken, 'not-a-scope'), 400, 'INVALID_ARGUMENT');
    expectError(await status(api.url, adminToken, '_', 'not-a-uuid'), 400, 'INVALID_ARGUMENT');
    expectError(await status(api.url, adminToken, '_', randomUUID()), 404, 'NOT_FOUND');
  });

  it('should keep tenants apart: a scope outside the caller is 403, another tenant’s device 404', async () => {
    const t = tenant.admin.token;
    // The parent's account and an unknown account alike: outside the tenant's subtree.
    expectError(await status(api.url, t, tenant.account.scopeId ?? randomUUID()), 403, 'FORBIDDEN');
    expectError(await status(api.url, t, randomUUID()), 403, 'FORBIDDEN');
    expectError(await status(api.url, t, '_', deviceId), 404, 'NOT_FOUND');
    expectError(await status(api.url, t, tenant.account.id, deviceId), 404, 'NOT_FOUND');
    await status(api.url, t, '_', tenantDeviceId).expect(200);
    await status(api.url, t, tenant.account.id.toUpperCase(), tenantDeviceId).expect(200);
    // The parent reaches into its child's account, by id.
    await status(api.url, adminToken, tenant.account.id, tenantDeviceId).expect(200);
    expectError(await status(api.url, adminToken, '_', tenantDeviceId), 404, 'NOT_FOUND');
  });

  describe('with the per-principal rate limit', () => {
    let limited: TestApi;

    beforeAll(async () => {
      limited = await startTestApi({ RATE_LIMIT_PER_MINUTE: '5' });
    });

    afterAll(async () => {
      await limited?.stop();
    });

    it('should count status reads in the user’s one bucket, with its other tokens and routes', async () => {
      const first = await login(limited);
      const second = await login(limited);
      const id = (await createDevice(limited, first)).id; // 1 of 5
      for (let i = 0; i < 3; i++) await status(limited.url, first, '_', id).expect(200); // 4 of 5
      await status(limited.url, second, '_', id).expect(200); // 5 of 5: another token, same user
      expectError(await status(limited.url, first, '_', id), 429, 'RATE_LIMITED');
      expectError(
        await request(limited.url).get('/v1/authentication/info').set(bearer(second)),
        429,
        'RATE_LIMITED',
      );
    });
  });
});
