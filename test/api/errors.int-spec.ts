import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import request from 'supertest';
import { createAccount, createUser, suffix } from '../support/factories';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';

/** One test per error class of the README's REST conventions: status, exact body shape, nothing internal leaked. */
describe('Error responses', () => {
  let api: TestApi;
  let token: string;
  /** The API's error log lines, to check what an unexpected error logs. */
  const logs: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    // Sign-in throttling counts per username and per client address; this file plays a client
    // address of its own for the 429 test (X-Forwarded-For, trusted from loopback) and bounds
    // each address at 10 failures like each username.
    api = await startTestApi(
      { LOG_LEVEL: 'error', TRUST_PROXY: 'loopback', LOGIN_MAX_FAILURES_PER_ADDRESS: '10' },
      { logDestination: { write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) } },
    );
    token = await login(api);
  });

  afterAll(async () => {
    await api?.stop();
  });

  describe('validation (400 INVALID_ARGUMENT naming the field)', () => {
    it('should return 400 naming the field when a field has the wrong type', async () => {
      const res = await request(api.url).post('/v1/_/accounts').set(bearer(token)).send({ name: 123 });
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(res.body.error).toContain('name');
      expect(res.body.details).toContain('name must be a string');
    });

    it('should return 400 naming the field when an unknown field is sent', async () => {
      const res = await request(api.url)
        .post('/v1/_/accounts')
        .set(bearer(token))
        .send({ name: `acct-${suffix()}`, isRoot: true });
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(res.body.error).toContain('isRoot');
      expect(res.body.details).toContain('isRoot should not exist');
    });

    it('should return 400 naming the field when a string is longer than allowed', async () => {
      const res = await request(api.url)
        .post('/v1/_/accounts')
        .set(bearer(token))
        .send({ name: `acct-${suffix()}`, description: 'x'.repeat(1025) });
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(res.body.error).toContain('description');
      expect(res.body.details).toContain('description must be shorter than or equal to 1024 characters');
    });

    it('should return 400 when an id in the path is not a UUID', async () => {
      const res = await request(api.url).get('/v1/_/users/not-a-uuid').set(bearer(token));
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(res.body.error).toBe('Invalid id');
      expect(res.body.details).toContain('UUID');
    });

    it('should return 400 naming scopeId when the scope in the path is neither a UUID nor _', async () => {
      const res = await request(api.url).get('/v1/not-a-scope/users').set(bearer(token));
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(res.body.error).toContain('scopeId');
    });

    it.each(['10.0.0.0/33', '10.0.0.0', '300.1.2.0/24', 'fd00::/64', '10.0.0.0/31'])(
      'should return 400 naming vpnSubnet when it is %s (not an IPv4 CIDR with prefix 8–30)',
      async (vpnSubnet) => {
        const res = await request(api.url)
          .post('/v1/_/accounts')
          .set(bearer(token))
          .send({ name: `acct-${suffix()}`, vpnSubnet });
        expectError(res, 400, 'INVALID_ARGUMENT');
        expect(res.body.error).toContain('vpnSubnet');
        expect(res.body.details).toContain('vpnSubnet must be an IPv4 CIDR');
      },
    );

    it('should return 400 naming vpnSubnet when the network has host bits set', async () => {
      const res = await request(api.url)
        .post('/v1/_/accounts')
        .set(bearer(token))
        .send({ name: `acct-${suffix()}`, vpnSubnet: '10.240.0.1/20' });
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(`${res.body.error} ${res.body.details}`).toContain('vpnSubnet');
    });

    it.each(['Acme', 'acme_corp', 'a', '-acme', 'acme/+/#', 'acme.corp', 'x'.repeat(64)])(
      'should return 400 naming name when the account name %s is not topic-safe',
      async (name) => {
        const res = await request(api.url).post('/v1/_/accounts').set(bearer(token)).send({ name });
        expectError(res, 400, 'INVALID_ARGUMENT');
        expect(res.body.error).toContain('name');
        expect(res.body.details).toContain('name must match [a-z0-9][a-z0-9-]{1,62}');
      },
    );

    it('should return 400 naming the query parameter when limit exceeds 500', async () => {
      const res = await request(api.url).get('/v1/_/users?limit=501').set(bearer(token));
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(res.body.error).toContain('limit');
      expect(res.body.details).toContain('limit must not be greater than 500');
    });

    it('should return 400 naming the query parameter when an unknown filter is sent', async () => {
      const res = await request(api.url).get('/v1/_/users?password=x').set(bearer(token));
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(res.body.details).toContain('password should not exist');
    });
  });

  it('should return 404 NOT_FOUND for an unknown route', async () => {
    const res = await request(api.url).get('/v1/_/no-such-thing').set(bearer(token));
    expectError(res, 404, 'NOT_FOUND');
    expect(res.body.details).toBe('No route GET /v1/_/no-such-thing');
  });

  it('should return 404 NOT_FOUND for an unknown route even without a token', async () => {
    const res = await request(api.url).post('/v2/whatever');
    expectError(res, 404, 'NOT_FOUND');
  });

  it('should return 400 INVALID_ARGUMENT for malformed JSON', async () => {
    const res = await request(api.url)
      .post('/v1/_/accounts')
      .set(bearer(token))
      .set('Content-Type', 'application/json')
      .send('{"name": "acme",');
    expectError(res, 400, 'INVALID_ARGUMENT');
    expect(`${res.body.error} ${res.body.details}`).toMatch(/JSON/);
  });

  it('should return 400 INVALID_ARGUMENT for malformed JSON on a public route', async () => {
    const res = await request(api.url)
      .post('/v1/authentication/user')
      .set('Content-Type', 'application/json')
      .send('{username: admin}');
    expectError(res, 400, 'INVALID_ARGUMENT');
  });

  it('should return 413 when the body is larger than 100kb', async () => {
    const res = await request(api.url)
      .post('/v1/_/accounts')
      .set(bearer(token))
      .send({ name: `acct-${suffix()}`, description: 'x'.repeat(101 * 1024) });
    expectError(res, 413, 'PAYLOAD_TOO_LARGE');
  });

  describe('authentication', () => {
    it('should return 401 UNAUTHORIZED without a token', async () => {
      const res = await request(api.url).get('/v1/_/accounts');
      expectError(res, 401, 'UNAUTHORIZED');
    });

    it.each([
      ['a garbage token', 'Bearer garbage'],
      ['a token of three garbage parts', 'Bearer aaa.bbb.ccc'],
      ['another scheme', `Basic ${Buffer.from('admin:x').toString('base64')}`],
      ['an empty bearer', 'Bearer '],
    ])('should return 401 UNAUTHORIZED with %s', async (_what, authorization) => {
      const res = await request(api.url).get('/v1/_/accounts').set('Authorization', authorization);
      expectError(res, 401, 'UNAUTHORIZED');
    });

    it('should return 401 AUTH_FAILED for wrong credentials', async () => {
      const res = await request(api.url)
        .post('/v1/authentication/user')
        .send({ username: 'admin', password: 'not-the-password' });
      expectError(res, 401, 'AUTH_FAILED');
      // A later success resets the username's failure count (not the address's: one failure here).
      await login(api);
    });
  });

  it('should return 403 FORBIDDEN when the role lacks the permission', async () => {
    const viewer = await createUser(api, token, '_', 'viewer');
    const res = await request(api.url)
      .post('/v1/_/accounts')
      .set(bearer(viewer.token))
      .send({ name: `acct-${suffix()}` });
    expectError(res, 403, 'FORBIDDEN');
  });

  it('should return 403 FORBIDDEN for a scope outside the caller accounts', async () => {
    const child = await createAccount(api, token);
    const childAdmin = await createUser(api, token, child.id, 'admin');
    const res = await request(api.url).get(`/v1/${randomUUID()}/users`).set(bearer(childAdmin.token));
    expectError(res, 403, 'FORBIDDEN');
  });

  it('should return 404 NOT_FOUND for an unknown id', async () => {
    const res = await request(api.url).get(`/v1/_/users/${randomUUID()}`).set(bearer(token));
    expectError(res, 404, 'NOT_FOUND');
    expect(res.body.error).toBe('User not found');
  });

  it('should return 409 ENTRY_EXISTS when the account name is taken', async () => {
    const existing = await createAccount(api, token);
    const res = await request(api.url)
      .post('/v1/_/accounts')
      .set(bearer(token))
      .send({ name: existing.name });
    expectError(res, 409, 'ENTRY_EXISTS');
  });

  it('should return 409 ENTRY_EXISTS when the username is taken', async () => {
    const res = await request(api.url)
      .post('/v1/_/users')
      .set(bearer(token))
      .send({ username: 'admin', password: 'long-enough-password', role: 'viewer' });
    expectError(res, 409, 'ENTRY_EXISTS');
  });

  it('should return 409 OPTLOCK_CONFLICT when the optlock is stale', async () => {
    const account = await createAccount(api, token);
    await request(api.url)
      .put(`/v1/_/accounts/${account.id}`)
      .set(bearer(token))
      .send({ description: 'first', optlock: account.optlock })
      .expect(200);
    const res = await request(api.url)
      .put(`/v1/_/accounts/${account.id}`)
      .set(bearer(token))
      .send({ description: 'second', optlock: account.optlock });
    expectError(res, 409, 'OPTLOCK_CONFLICT');
  });

  it('should return 429 RATE_LIMITED with Retry-After after 10 failed sign-ins from one source', async () => {
    const bad = { username: `nobody-${suffix()}`, password: 'wrong-password' };
    const source = '198.51.100.10';
    for (let i = 0; i < 10; i++) {
      const res = await request(api.url)
        .post('/v1/authentication/user')
        .set('X-Forwarded-For', source)
        .send(bad);
      expectError(res, 401, 'AUTH_FAILED');
    }
    const res = await request(api.url)
      .post('/v1/authentication/user')
      .set('X-Forwarded-For', source)
      .send(bad);
    expectError(res, 429, 'RATE_LIMITED');
    const retryAfter = Number(res.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(300);
    // The right password is refused too while the source is throttled.
    const good = await request(api.url)
      .post('/v1/authentication/user')
      .set('X-Forwarded-For', source)
      .send({ username: 'admin', password: 'admin-password-for-tests' });
    expectError(good, 429, 'RATE_LIMITED');
    // Bearer tokens already issued keep working.
    await request(api.url).get('/v1/authentication/info').set(bearer(token)).expect(200);
  });

  describe('when the database fails', () => {
    const secretPassword = 'secret-password-in-a-failing-insert';
    let db: Client;

    beforeAll(async () => {
      db = new Client({ connectionString: api.db.url });
      await db.connect();
      // Break a column that inserting a user writes, but that authentication does not read.
      await db.query('ALTER TABLE app_user RENAME COLUMN created_by TO created_by_broken');
    });

    afterAll(async () => {
      await db.query('ALTER TABLE app_user RENAME COLUMN created_by_broken TO created_by');
      await db.end();
    });

    it('should return 500 STORAGE_ERROR with the request id and no SQL or stack', async () => {
      const res = await request(api.url)
        .post('/v1/_/users')
        .set(bearer(token))
        .set('X-Request-Id', 'req-storage-error-1')
        .send({ username: `user-${suffix()}`, password: secretPassword, role: 'viewer' });
      expectError(res, 500, 'STORAGE_ERROR');
      expect(res.body.details).toContain('req-storage-error-1');
      expect(res.headers['x-request-id']).toBe('req-storage-error-1');
      for (const internal of ['created_by', 'app_user', 'User', 'column', 'typeorm', 'postgres', 'scrypt']) {
        expect(res.text).not.toContain(internal);
      }
    });

    it('should log the storage error with the request id but without query parameters (password hashes)', () => {
      const line = logs.find((l) => l.msg === 'storage error' && l.requestId === 'req-storage-error-1');
      expect(line).toBeDefined();
      const text = JSON.stringify(line);
      expect(text).toContain('created_by');
      expect(text).not.toContain('scrypt$');
      expect(text).not.toContain(secretPassword);
    });
  });
});
