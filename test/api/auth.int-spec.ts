import jwt from 'jsonwebtoken';
import { randomBytes, randomUUID } from 'node:crypto';
import request from 'supertest';
import { createApiKey, createUser, loginApiKey, suffix } from '../support/factories';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, TEST_ADMIN_PASSWORD, type TestApi } from '../support/test-api';
import { parseApiKey } from '../../apps/api/src/apikeys/api-key.format';

interface Claims {
  sub: string;
  sId: string;
  jti: string;
  typ: string;
  iat: number;
  exp: number;
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('Authentication', () => {
  let api: TestApi;
  let adminToken: string;

  beforeAll(async () => {
    api = await startTestApi();
    adminToken = await login(api);
  });

  afterAll(async () => {
    await api?.stop();
  });

  const signIn = (username: string, password: string) =>
    request(api.url).post('/v1/authentication/user').send({ username, password });
  const info = (token: string) => request(api.url).get('/v1/authentication/info').set(bearer(token));
  const refresh = (tokenId: string, refreshToken: string) =>
    request(api.url).post('/v1/authentication/refresh').send({ tokenId, refreshToken });

  describe('sign-in with username and password', () => {
    it('should return the access token object', async () => {
      const before = Date.now();
      const res = await signIn('admin', TEST_ADMIN_PASSWORD).expect(200);
      expect(Object.keys(res.body).sort()).toEqual(
        ['apiKeyId', 'expiresOn', 'refreshExpiresOn', 'refreshToken', 'scopeId', 'tokenId', 'userId'].sort(),
      );
      expect(res.body.apiKeyId).toBeNull();
      const expiresOn = Date.parse(res.body.expiresOn);
      const refreshExpiresOn = Date.parse(res.body.refreshExpiresOn);
      // Defaults: access 30 min, refresh 5 h.
      expect(expiresOn - before).toBeGreaterThan(29 * 60_000);
      expect(expiresOn - before).toBeLessThanOrEqual(31 * 60_000);
      expect(refreshExpiresOn - before).toBeGreaterThan(299 * 60_000);
      expect(refreshExpiresOn - before).toBeLessThanOrEqual(301 * 60_000);
      // ≥ 128 random bits.
      expect(Buffer.from(res.body.refreshToken, 'base64url').length).toBeGreaterThanOrEqual(16);
      const claims = jwt.decode(res.body.tokenId) as Claims;
      expect(claims.sub).toBe(res.body.userId);
      expect(claims.sId).toBe(res.body.scopeId);
      expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
      expect(jwt.decode(res.body.tokenId, { complete: true })?.header.alg).toBe('HS256');
    });

    it('should describe the caller in /info', async () => {
      const signedIn = await signIn('admin', TEST_ADMIN_PASSWORD).expect(200);
      const res = await info(signedIn.body.tokenId).expect(200);
      expect(res.body).toEqual({
        tokenId: (jwt.decode(signedIn.body.tokenId) as Claims).jti,
        scopeId: signedIn.body.scopeId,
        userId: signedIn.body.userId,
        apiKeyId: null,
        role: 'admin',
        permissions: [
          'account:read',
          'account:write',
          'apikey:read',
          'apikey:write',
          'device:read',
          'device:write',
          'gateway:read',
          'gateway:write',
          'user:read',
          'user:write',
          'vpn:connect',
          'vpn:read',
          'vpn:session',
          'webhook:read',
          'webhook:write',
        ],
      });
    });

    it('should answer an unknown user and a wrong password with the same body', async () => {
      const unknown = await signIn(`nobody-${suffix()}`, 'some-password');
      const wrong = await signIn('admin', 'some-password');
      expectError(unknown, 401, 'AUTH_FAILED');
      expectError(wrong, 401, 'AUTH_FAILED');
      expect(unknown.body).toEqual(wrong.body);
      await login(api); // resets the failure count of this source
    });

    it('should return 401 AUTH_FAILED for a disabled user, and refuse its live tokens at once', async () => {
      const user = await createUser(api, adminToken, '_', 'viewer');
      await info(user.token).expect(200);
      await request(api.url)
        .put(`/v1/_/users/${user.id}`)
        .set(bearer(adminToken))
        .send({ enabled: false, optlock: user.optlock })
        .expect(200);
      expectError(await info(user.token), 401, 'UNAUTHORIZED');
      expectError(await signIn(user.username, user.password), 401, 'AUTH_FAILED');
      await login(api);
    });

    it('should revoke the tokens of a user whose password changes', async () => {
      const user = await createUser(api, adminToken, '_', 'operator');
      const pair = (await signIn(user.username, user.password).expect(200)).body;
      await request(api.url)
        .put(`/v1/_/users/${user.id}`)
        .set(bearer(adminToken))
        .send({ password: 'a-brand-new-password', optlock: user.optlock })
        .expect(200);
      expectError(await info(user.token), 401, 'UNAUTHORIZED');
      expectError(await info(pair.tokenId), 401, 'UNAUTHORIZED');
      expectError(await refresh(pair.tokenId, pair.refreshToken), 401, 'AUTH_FAILED');
      expectError(await signIn(user.username, user.password), 401, 'AUTH_FAILED');
      const fresh = await signIn(user.username, 'a-brand-new-password').expect(200);
      await info(fresh.body.tokenId).expect(200);
    });

    it('should refuse the tokens of a deleted user', async () => {
      const user = await createUser(api, adminToken, '_', 'viewer');
      await request(api.url).delete(`/v1/_/users/${user.id}`).set(bearer(adminToken)).expect(204);
      expectError(await info(user.token), 401, 'UNAUTHORIZED');
      expectError(await signIn(user.username, user.password), 401, 'AUTH_FAILED');
      await login(api);
    });
  });

  describe('refresh', () => {
    it('should rotate the pair: new tokens work, the old access and refresh tokens are refused', async () => {
      const old = (await signIn('admin', TEST_ADMIN_PASSWORD).expect(200)).body;
      const res = await refresh(old.tokenId, old.refreshToken).expect(200);
      expect(res.body.tokenId).not.toBe(old.tokenId);
      expect(res.body.refreshToken).not.toBe(old.refreshToken);
      expect(res.body.userId).toBe(old.userId);
      expect(res.body.scopeId).toBe(old.scopeId);
      await info(res.body.tokenId).expect(200);

      expectError(await info(old.tokenId), 401, 'UNAUTHORIZED');
      expectError(await refresh(old.tokenId, old.refreshToken), 401, 'AUTH_FAILED');
      // The new refresh token works once too.
      await refresh(res.body.tokenId, res.body.refreshToken).expect(200);
      await login(api);
    });

    it('should return 401 when the refresh token does not belong to the access token', async () => {
      const a = (await signIn('admin', TEST_ADMIN_PASSWORD).expect(200)).body;
      const b = (await signIn('admin', TEST_ADMIN_PASSWORD).expect(200)).body;
      expectError(await refresh(a.tokenId, b.refreshToken), 401, 'AUTH_FAILED');
      expectError(await refresh('not-a-jwt', a.refreshToken), 401, 'AUTH_FAILED');
      // The failed attempts did not consume a's refresh token.
      await refresh(a.tokenId, a.refreshToken).expect(200);
    });

    it('should refresh an access token that has expired', async () => {
      const pair = (await signIn('admin', TEST_ADMIN_PASSWORD).expect(200)).body;
      const claims = jwt.decode(pair.tokenId) as Claims;
      const expired = jwt.sign(
        { ...claims, iat: claims.iat - 3600, exp: claims.iat - 60 },
        api.config.jwtSecret,
        {
          algorithm: 'HS256',
        },
      );
      expectError(await info(expired), 401, 'UNAUTHORIZED');
      await refresh(expired, pair.refreshToken).expect(200);
    });
  });

  describe('logout', () => {
    it('should return 204 and refuse the token at once, and its refresh token', async () => {
      const pair = (await signIn('admin', TEST_ADMIN_PASSWORD).expect(200)).body;
      await request(api.url).post('/v1/authentication/logout').set(bearer(pair.tokenId)).expect(204);
      expectError(await info(pair.tokenId), 401, 'UNAUTHORIZED');
      expectError(await refresh(pair.tokenId, pair.refreshToken), 401, 'AUTH_FAILED');
      // Other tokens of the same user are not affected.
      await info(adminToken).expect(200);
      await login(api);
    });

    it('should return 401 without a token', async () => {
      expectError(await request(api.url).post('/v1/authentication/logout'), 401, 'UNAUTHORIZED');
    });
  });

  describe('API keys', () => {
    it('should sign in with an API key and act with its role', async () => {
      const key = await createApiKey(api, adminToken, '_', 'viewer');
      expect(key.apiKey).toMatch(/^vpk_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
      const res = await request(api.url)
        .post('/v1/authentication/apikey')
        .send({ apiKey: key.apiKey })
        .expect(200);
      expect(res.body.apiKeyId).toBe(key.id);
      expect(res.body.userId).toBeNull();
      const token = res.body.tokenId as string;
      const me = await info(token).expect(200);
      expect(me.body).toMatchObject({ apiKeyId: key.id, userId: null, role: 'viewer' });
      await request(api.url).get('/v1/_/accounts').set(bearer(token)).expect(200);
      expectError(
        await request(api.url)
          .post('/v1/_/accounts')
          .set(bearer(token))
          .send({ name: `acct-${suffix()}` }),
        403,
        'FORBIDDEN',
      );
      // The secret is shown once: it is not in the key's read model.
      const read = await request(api.url).get(`/v1/_/apikeys/${key.id}`).set(bearer(adminToken)).expect(200);
      // The secret is base64url and may itself hold '_': take everything after the key id.
      const secret = parseApiKey(key.apiKey)?.secret;
      expect(secret).toHaveLength(43);
      expect(read.text).not.toContain(secret);
      expect(read.body.apiKey).toBeUndefined();
      expect(read.body.lastUsedOn).not.toBeNull();
    });

    it('should record an API key as createdBy and modifiedBy of what it creates and changes', async () => {
      const key = await createApiKey(api, adminToken, '_', 'admin');
      const token = await loginApiKey(api, key.apiKey);
      const account = await request(api.url)
        .post('/v1/_/accounts')
        .set(bearer(token))
        .send({ name: `acct-${suffix()}` })
        .expect(201);
      expect(account.body.createdBy).toBe(key.id);
      const updated = await request(api.url)
        .put(`/v1/_/accounts/${account.body.id}`)
        .set(bearer(token))
        .send({ description: 'changed by a key', optlock: account.body.optlock })
        .expect(200);
      expect(updated.body.modifiedBy).toBe(key.id);
      const user = await request(api.url)
        .post('/v1/_/users')
        .set(bearer(token))
        .send({ username: `user-${suffix()}`, password: 'long-enough-password', role: 'viewer' })
        .expect(201);
      expect(user.body.createdBy).toBe(key.id);
    });

    it('should return 403 when an operator tries to create an API key with a role above its own', async () => {
      const operator = await createUser(api, adminToken, '_', 'operator');
      const res = await request(api.url)
        .post('/v1/_/apikeys')
        .set(bearer(operator.token))
        .send({ name: `key-${suffix()}`, role: 'admin' });
      expectError(res, 403, 'FORBIDDEN');
    });

    it('should refuse the tokens of a deleted API key, and the key itself', async () => {
      const key = await createApiKey(api, adminToken, '_', 'operator');
      const token = await loginApiKey(api, key.apiKey);
      await info(token).expect(200);
      await request(api.url).delete(`/v1/_/apikeys/${key.id}`).set(bearer(adminToken)).expect(204);
      expectError(await info(token), 401, 'UNAUTHORIZED');
      expectError(
        await request(api.url).post('/v1/authentication/apikey').send({ apiKey: key.apiKey }),
        401,
        'AUTH_FAILED',
      );
      await login(api);
    });

    it('should return 401 AUTH_FAILED for a malformed or forged API key', async () => {
      const key = await createApiKey(api, adminToken, '_', 'viewer');
      const forged = `${key.apiKey.slice(0, -4)}AAAA`;
      for (const apiKey of ['garbage', forged, `vpk_${randomBytes(16).toString('hex')}_${'A'.repeat(43)}`]) {
        expectError(
          await request(api.url).post('/v1/authentication/apikey').send({ apiKey }),
          401,
          'AUTH_FAILED',
        );
      }
      await login(api);
    });
  });

  describe('refused access tokens (401 UNAUTHORIZED)', () => {
    let live: string;
    let claims: Claims;

    beforeAll(async () => {
      live = (await signIn('admin', TEST_ADMIN_PASSWORD).expect(200)).body.tokenId;
      claims = jwt.decode(live) as Claims;
    });

    const expectRefused = async (token: string) => {
      expectError(await info(token), 401, 'UNAUTHORIZED');
      expectError(await request(api.url).get('/v1/_/accounts').set(bearer(token)), 401, 'UNAUTHORIZED');
    };

    it('should accept the live token these are forged from', async () => {
      await info(live).expect(200);
    });

    it('should refuse an expired token signed with the right key', async () => {
      const now = Math.floor(Date.now() / 1000);
      const token = jwt.sign({ ...claims, iat: now - 3600, exp: now - 10 }, api.config.jwtSecret, {
        algorithm: 'HS256',
      });
      await expectRefused(token);
    });

    it('should refuse a token signed with another key', async () => {
      const token = jwt.sign(claims, randomBytes(32).toString('hex'), { algorithm: 'HS256' });
      await expectRefused(token);
    });

    it('should refuse a token with alg none', async () => {
      const token = `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`;
      await expectRefused(token);
    });

    it('should refuse a token with another algorithm than HS256, even with the right key', async () => {
      const token = jwt.sign(claims, api.config.jwtSecret, { algorithm: 'HS512' });
      await expectRefused(token);
    });

    it('should refuse a token whose payload was altered', async () => {
      const [header, , signature] = live.split('.');
      const token = `${header}.${b64url({ ...claims, sId: randomUUID() })}.${signature}`;
      await expectRefused(token);
    });

    it('should refuse a well-signed token whose jti was never issued', async () => {
      const token = jwt.sign({ ...claims, jti: randomUUID() }, api.config.jwtSecret, { algorithm: 'HS256' });
      await expectRefused(token);
    });

    it('should refuse a well-signed token without the expected claims', async () => {
      const token = jwt.sign({ sub: claims.sub }, api.config.jwtSecret, { algorithm: 'HS256' });
      await expectRefused(token);
    });

    it.each(['abc', 'a.b.c', `${b64url({ alg: 'HS256' })}.${b64url('x')}.AAAA`])(
      'should refuse the malformed token %s',
      async (token) => {
        await expectRefused(token);
      },
    );

    it('should refuse a revoked token', async () => {
      const token = (await signIn('admin', TEST_ADMIN_PASSWORD).expect(200)).body.tokenId;
      await request(api.url).post('/v1/authentication/logout').set(bearer(token)).expect(204);
      await expectRefused(token);
    });
  });
});
