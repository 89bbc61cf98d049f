import { randomBytes, scryptSync } from 'node:crypto';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { createApiKey, createUser, loginApiKey, suffix } from '../support/factories';
import { eventually } from '../support/eventually';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, TEST_ADMIN_PASSWORD, type TestApi } from '../support/test-api';

/**
 * The remaining findings of the attack run (E): security headers, scrypt cost and re-hashing,
 * a per-principal rate limit, API keys outliving their creator, and expired tokens piling up.
 */
describe('Security hardening', () => {
  let api: TestApi;
  let token: string;
  let db: DataSource;

  beforeAll(async () => {
    api = await startTestApi({ TOKEN_PURGE_INTERVAL_MS: '200', RATE_LIMIT_PER_MINUTE: '0' });
    token = await login(api);
    db = api.app.get(DataSource);
  });

  afterAll(async () => {
    await api?.stop();
  });

  describe('response headers', () => {
    const expectHardened = (res: request.Response) => {
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(res.headers['x-powered-by']).toBeUndefined();
    };

    it.each([
      ['a health check', () => request(api.url).get('/health/live')],
      ['an authenticated read', () => request(api.url).get('/v1/_/accounts').set(bearer(token))],
      ['a 401', () => request(api.url).get('/v1/_/accounts')],
      ['an unknown route', () => request(api.url).get('/nowhere')],
      [
        'malformed JSON (refused by the body parser)',
        () =>
          request(api.url).post('/v1/authentication/user').set('Content-Type', 'application/json').send('{'),
      ],
      ['the OpenAPI document', () => request(api.url).get('/openapi.json')],
    ])('should send nosniff and framing protection on %s', async (_what, call) => {
      const res = await call();
      expectHardened(res);
      expect(res.headers['content-security-policy']).toContain("default-src 'none'");
      expect(res.headers['cache-control']).toBe('no-store');
    });

    it('should allow Swagger UI its own scripts and its inline styles on /docs only', async () => {
      const docs = await request(api.url).get('/docs').redirects(1);
      expect(docs.status).toBe(200);
      expectHardened(docs);
      const csp: string = docs.headers['content-security-policy'];
      // Its page loads scripts from this origin only (no inline script), and needs inline styles.
      expect(csp).toMatch(/script-src 'self'(;|$)/);
      expect(csp).toMatch(/style-src [^;]*'unsafe-inline'/);
      expect(docs.text).not.toMatch(/<script>/);
      const apiCsp: string = (await request(api.url).get('/health/live')).headers['content-security-policy'];
      expect(apiCsp).not.toContain('unsafe-inline');
    });

    it('should answer tokens and credentials with Cache-Control: no-store', async () => {
      const signIn = await request(api.url)
        .post('/v1/authentication/user')
        .send({ username: 'admin', password: TEST_ADMIN_PASSWORD })
        .expect(200);
      const refreshed = await request(api.url)
        .post('/v1/authentication/refresh')
        .send({ tokenId: signIn.body.tokenId, refreshToken: signIn.body.refreshToken })
        .expect(200);
      const key = await request(api.url)
        .post('/v1/_/apikeys')
        .set(bearer(token))
        .send({ name: `k-${suffix()}`, role: 'viewer' })
        .expect(201);
      const keySignIn = await request(api.url)
        .post('/v1/authentication/apikey')
        .send({ apiKey: key.body.apiKey })
        .expect(200);
      const device = await request(api.url)
        .post('/v1/_/devices')
        .set(bearer(token))
        .send({ clientId: `d-${suffix()}` })
        .expect(201);
      const deviceCreds = await request(api.url)
        .post(`/v1/_/devices/${device.body.id}/credentials`)
        .set(bearer(token))
        .expect(201);
      const gateway = await request(api.url)
        .post('/v1/_/gateways')
        .set(bearer(token))
        .send({ name: `g-${suffix()}`, endpoint: 'vpn.example.com:51820' })
        .expect(201);
      const gatewayCreds = await request(api.url)
        .post(`/v1/_/gateways/${gateway.body.id}/credentials`)
        .set(bearer(token))
        .expect(201);
      const fend = await request(api.url)
        .post('/api/client/signin')
        .send({
          project: api.config.rootAccountName,
          client_platform: 'linux',
          client_version: '1',
          device_id: 'd',
          auth_type: 'password',
          auth_info: `admin:${TEST_ADMIN_PASSWORD}`,
        })
        .expect(200);
      for (const res of [signIn, refreshed, key, keySignIn, deviceCreds, gatewayCreds, fend]) {
        expect({ url: res.request.url, cacheControl: res.headers['cache-control'] }).toEqual({
          url: res.request.url,
          cacheControl: 'no-store',
        });
      }
    });
  });

  describe('password hashing', () => {
    const storedHash = async (userId: string): Promise<string> =>
      (
        await db.query<Array<{ password_hash: string }>>('SELECT password_hash FROM app_user WHERE id = $1', [
          userId,
        ])
      )[0].password_hash;

    it('should hash new passwords with scrypt N=2^17, r=8, p=1', async () => {
      const user = await createUser(api, token, '_', 'viewer');
      expect(await storedHash(user.id)).toMatch(/^scrypt\$131072\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    });

    it('should re-hash an old (N=2^14) hash at the next successful sign-in, without touching the user', async () => {
      const user = await createUser(api, token, '_', 'operator');
      const salt = randomBytes(16);
      const old = `scrypt$16384$8$1$${salt.toString('base64')}$${scryptSync(user.password, salt, 32, { N: 16384, r: 8, p: 1 }).toString('base64')}`;
      await db.query('UPDATE app_user SET password_hash = $1 WHERE id = $2', [old, user.id]);
      const before = (await request(api.url).get(`/v1/_/users/${user.id}`).set(bearer(token)).expect(200))
        .body;

      // A wrong password does not re-hash.
      expectError(
        await request(api.url)
          .post('/v1/authentication/user')
          .send({ username: user.username, password: 'wrong-password' }),
        401,
        'AUTH_FAILED',
      );
      expect(await storedHash(user.id)).toBe(old);

      await login(api, user.username, user.password);
      const upgraded = await storedHash(user.id);
      expect(upgraded).toMatch(/^scrypt\$131072\$8\$1\$/);
      expect(
        (await request(api.url).get(`/v1/_/users/${user.id}`).set(bearer(token)).expect(200)).body,
      ).toEqual(before);
      await login(api, user.username, user.password);
      expect(await storedHash(user.id)).toBe(upgraded);
    });
  });

  describe('API keys whose creator is deleted', () => {
    it('should revoke the keys a user created (and the keys those created) when the user is deleted', async () => {
      const creator = await createUser(api, token, '_', 'admin');
      const key = await createApiKey(api, creator.token, '_', 'admin');
      const keyToken = await loginApiKey(api, key.apiKey);
      const grandKey = await createApiKey(api, keyToken, '_', 'viewer');
      const grandToken = await loginApiKey(api, grandKey.apiKey);
      const unrelated = await createApiKey(api, token, '_', 'viewer');
      await request(api.url).get('/v1/authentication/info').set(bearer(grandToken)).expect(200);

      await request(api.url).delete(`/v1/_/users/${creator.id}`).set(bearer(token)).expect(204);

      for (const [k, t] of [
        [key, keyToken],
        [grandKey, grandToken],
      ] as const) {
        expectError(
          await request(api.url).get('/v1/authentication/info').set(bearer(t)),
          401,
          'UNAUTHORIZED',
        );
        expectError(
          await request(api.url).post('/v1/authentication/apikey').send({ apiKey: k.apiKey }),
          401,
          'AUTH_FAILED',
        );
        expectError(await request(api.url).get(`/v1/_/apikeys/${k.id}`).set(bearer(token)), 404, 'NOT_FOUND');
      }
      await loginApiKey(api, unrelated.apiKey);
    });

    it('should refuse a key whose creator is gone even if it was left behind', async () => {
      const key = await createApiKey(api, token, '_', 'viewer');
      const keyToken = await loginApiKey(api, key.apiKey);
      // A key whose creating user vanished without the delete path (e.g. removed by hand).
      await db.query('UPDATE api_key SET created_by = gen_random_uuid() WHERE id = $1', [key.id]);
      expectError(
        await request(api.url).get('/v1/authentication/info').set(bearer(keyToken)),
        401,
        'UNAUTHORIZED',
      );
      expectError(
        await request(api.url).post('/v1/authentication/apikey').send({ apiKey: key.apiKey }),
        401,
        'AUTH_FAILED',
      );
      await login(api);
    });
  });

  describe('expired access tokens', () => {
    const tokenRows = async (ids: string[]) =>
      (
        await db.query<Array<{ id: string }>>('SELECT id FROM access_token WHERE id = ANY($1::uuid[])', [ids])
      ).map((r) => r.id);
    const jti = (jwt: string) =>
      JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString()).jti as string;

    it('should purge expired and revoked token rows periodically, and keep live ones', async () => {
      const expired = jti(await login(api));
      const revokedJwt = await login(api);
      const revoked = jti(revokedJwt);
      const live = await login(api);
      await db.query(
        `UPDATE access_token SET expires_on = now() - interval '2 hours', refresh_expires_on = now() - interval '1 hour'
          WHERE id = $1`,
        [expired],
      );
      await request(api.url).post('/v1/authentication/logout').set(bearer(revokedJwt)).expect(204);
      await db.query(`UPDATE access_token SET expires_on = now() - interval '1 minute' WHERE id = $1`, [
        revoked,
      ]);
      const staleFailure = randomBytes(32);
      await db.query(
        `INSERT INTO login_failure (key, failures, window_start) VALUES ($1, 3, now() - interval '1 day')`,
        [staleFailure],
      );

      await eventually(async () => {
        expect(await tokenRows([expired, revoked, jti(live)])).toEqual([jti(live)]);
        expect(await db.query('SELECT 1 FROM login_failure WHERE key = $1', [staleFailure])).toEqual([]);
      }, 10_000);
      await request(api.url).get('/v1/authentication/info').set(bearer(live)).expect(200);
    });
  });

  describe('rate limit per principal', () => {
    let limited: TestApi;

    beforeAll(async () => {
      limited = await startTestApi({ RATE_LIMIT_PER_MINUTE: '20' });
    });

    afterAll(async () => {
      await limited?.stop();
    });

    it('should answer 429 with Retry-After past the limit, per user or key, not per token', async () => {
      const first = await login(limited);
      const second = await login(limited);
      const key = await createApiKey(limited, first, '_', 'viewer');
      const keyToken = await loginApiKey(limited, key.apiKey);
      // login + createApiKey used 1 of the admin's 20; 19 more pass.
      for (let i = 0; i < 19; i++) {
        await request(limited.url)
          .get('/v1/authentication/info')
          .set(bearer(i % 2 ? first : second))
          .expect(200);
      }
      const res = await request(limited.url).get('/v1/_/accounts').set(bearer(second));
      expectError(res, 429, 'RATE_LIMITED');
      const retryAfter = Number(res.headers['retry-after']);
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expectError(await request(limited.url).get('/v1/_/accounts').set(bearer(first)), 429, 'RATE_LIMITED');
      // Another principal (the API key) and unauthenticated routes are not affected.
      await request(limited.url).get('/v1/authentication/info').set(bearer(keyToken)).expect(200);
      await request(limited.url).get('/health/live').expect(200);
      await login(limited);
    });

    it('should not limit at all with RATE_LIMIT_PER_MINUTE=0', async () => {
      const results = await Promise.all(
        Array.from({ length: 200 }, () => request(api.url).get('/v1/authentication/info').set(bearer(token))),
      );
      expect(results.map((r) => r.status)).toEqual(Array(200).fill(200));
    });
  });
});
