import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { createApiKey, createUser, suffix, type CreatedUser } from '../support/factories';
import { expectError, login } from '../support/http';
import { startTestApi, TEST_ADMIN_PASSWORD, type TestApi } from '../support/test-api';

/**
 * Sign-in throttling (attack run, finding A): failures are counted per username and per client
 * address, separately, in Postgres; a success clears only its own username's counter. The API
 * trusts X-Forwarded-For from loopback here (TRUST_PROXY), so each test plays its own addresses.
 */
describe('Sign-in throttling', () => {
  let api: TestApi;
  let adminToken: string;

  /** A fresh documentation address (TEST-NET-3) per call, so tests do not share address counters. */
  let lastOctet = 0;
  const newAddress = () => `203.0.113.${++lastOctet}`;

  const signIn = (from: string, username: string, password: string) =>
    request(api.url)
      .post('/v1/authentication/user')
      .set('X-Forwarded-For', from)
      .send({ username, password });

  const expectThrottled = (res: request.Response) => {
    expectError(res, 429, 'RATE_LIMITED');
    const retryAfter = Number(res.headers['retry-after']);
    expect(Number.isInteger(retryAfter)).toBe(true);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(300);
  };

  beforeAll(async () => {
    api = await startTestApi({ TRUST_PROXY: 'loopback', LOGIN_MAX_FAILURES_PER_ADDRESS: '15' });
    adminToken = await login(api);
  });

  afterAll(async () => {
    await api?.stop();
  });

  it('should throttle guesses at one username even when the guesser signs in with its own account in between', async () => {
    // The attack: nine guesses at the victim's password, one sign-in with the attacker's own valid
    // credentials, repeated six times: 54 guesses. It used to get zero 429s.
    const victim = await createUser(api, adminToken, '_', 'operator');
    const attacker = await createUser(api, adminToken, '_', 'viewer');
    const from = newAddress();
    const guesses: number[] = [];
    for (let round = 0; round < 6; round++) {
      for (let i = 0; i < 9; i++) {
        const res = await signIn(from, victim.username, `guess-${round}-${i}`);
        if (res.status === 429) expectThrottled(res);
        else expectError(res, 401, 'AUTH_FAILED');
        guesses.push(res.status);
      }
      const own = await signIn(from, attacker.username, attacker.password);
      expect(own.status).toBe(200);
    }
    // 10 failures per username per window: the 11th guess and every later one are refused unseen.
    expect(guesses.slice(0, 10)).toEqual(Array(10).fill(401));
    expect(guesses.slice(10)).toEqual(Array(44).fill(429));
    // The victim's username stays throttled from any address (the counter is per username) ...
    expectThrottled(await signIn(newAddress(), victim.username, victim.password));
    // ... while the attacker's own logins never cleared it.
    expectThrottled(await signIn(from, victim.username, 'one-more-guess'));
  });

  it("should count an address's failures across usernames and throttle every username from it", async () => {
    const from = newAddress();
    // 15 failures (the configured per-address bound), each for another unknown username.
    for (let batch = 0; batch < 5; batch++) {
      const results = await Promise.all(
        Array.from({ length: 3 }, () => signIn(from, `nobody-${suffix()}`, 'wrong-password')),
      );
      for (const res of results) expectError(res, 401, 'AUTH_FAILED');
    }
    expectThrottled(await signIn(from, `nobody-${suffix()}`, 'wrong-password'));
    // The right password is refused from that address too; other addresses are not affected.
    expectThrottled(await signIn(from, 'admin', TEST_ADMIN_PASSWORD));
    expect((await signIn(newAddress(), 'admin', TEST_ADMIN_PASSWORD)).status).toBe(200);
  });

  it("should clear only the signing-in username's counter on success, not its address's", async () => {
    const user = await createUser(api, adminToken, '_', 'viewer');
    const from = newAddress();
    for (let i = 0; i < 6; i++)
      expectError(await signIn(from, user.username, `wrong-${i}`), 401, 'AUTH_FAILED');
    expect((await signIn(from, user.username, user.password)).status).toBe(200);
    // The username's counter was cleared: 9 more failures (15 in all) from elsewhere are still 401.
    // The address's counter was not: 6 + 9 more failures from `from` reach its bound of 15.
    // (Two independent runs of failures, sent side by side.)
    const elsewhere = newAddress();
    await Promise.all([
      (async () => {
        for (let i = 0; i < 9; i++) {
          expectError(await signIn(elsewhere, user.username, `wrong-again-${i}`), 401, 'AUTH_FAILED');
        }
      })(),
      (async () => {
        for (let i = 0; i < 9; i++) {
          expectError(await signIn(from, `nobody-${suffix()}`, 'wrong-password'), 401, 'AUTH_FAILED');
        }
      })(),
    ]);
    expectThrottled(await signIn(from, user.username, user.password));
  });

  it('should count the same way on every API instance sharing the database', async () => {
    const second = await startTestApi(
      { TRUST_PROXY: 'loopback', LOGIN_MAX_FAILURES_PER_ADDRESS: '15' },
      { database: api.db },
    );
    try {
      const user = await createUser(api, adminToken, '_', 'viewer');
      const from = newAddress();
      // Ten failures, five on each instance (sent to both side by side).
      const failOn = async (target: string, round: number) => {
        const res = await request(target)
          .post('/v1/authentication/user')
          .set('X-Forwarded-For', from)
          .send({ username: user.username, password: `wrong-${round}` });
        expectError(res, 401, 'AUTH_FAILED');
      };
      for (let i = 0; i < 5; i++) await Promise.all([failOn(api.url, i), failOn(second.url, i)]);
      for (const target of [api.url, second.url]) {
        expectThrottled(
          await request(target)
            .post('/v1/authentication/user')
            .set('X-Forwarded-For', newAddress())
            .send({ username: user.username, password: user.password }),
        );
      }
    } finally {
      await second.stop();
    }
  });

  it('should throttle FendVPN sign-ins with the same counters (they go through the same service)', async () => {
    const victim: CreatedUser = await createUser(api, adminToken, '_', 'viewer');
    const own: CreatedUser = await createUser(api, adminToken, '_', 'viewer');
    const project = api.config.rootAccountName;
    const from = newAddress();
    const fendSignIn = (authInfo: string) =>
      request(api.url).post('/api/client/signin').set('X-Forwarded-For', from).send({
        project,
        client_platform: 'linux',
        client_version: '1.0',
        device_id: 'laptop-1',
        auth_type: 'password',
        auth_info: authInfo,
      });
    for (let i = 0; i < 9; i++)
      expectError(await fendSignIn(`${victim.username}:wrong-${i}`), 401, 'AUTH_FAILED');
    expect((await fendSignIn(`${own.username}:${own.password}`)).status).toBe(200);
    expectError(await fendSignIn(`${victim.username}:wrong-9`), 401, 'AUTH_FAILED');
    expectThrottled(await fendSignIn(`${victim.username}:${victim.password}`));
    // The REST sign-in sees the same counter.
    expectThrottled(await signIn(newAddress(), victim.username, victim.password));
  });

  it('should count failed API key sign-ins and refreshes against the address', async () => {
    const from = newAddress();
    const key = await createApiKey(api, adminToken, '_', 'viewer');
    for (let i = 0; i < 8; i++) {
      const forged = `vpk_${randomBytes(16).toString('hex')}_${randomBytes(32).toString('base64url').slice(0, 43)}`;
      expectError(
        await request(api.url)
          .post('/v1/authentication/apikey')
          .set('X-Forwarded-For', from)
          .send({ apiKey: forged }),
        401,
        'AUTH_FAILED',
      );
    }
    for (let i = 0; i < 7; i++) {
      expectError(
        await request(api.url)
          .post('/v1/authentication/refresh')
          .set('X-Forwarded-For', from)
          .send({ tokenId: adminToken, refreshToken: randomBytes(32).toString('base64url') }),
        401,
        'AUTH_FAILED',
      );
    }
    expectThrottled(
      await request(api.url)
        .post('/v1/authentication/apikey')
        .set('X-Forwarded-For', from)
        .send({ apiKey: key.apiKey }),
    );
    expect(
      (
        await request(api.url)
          .post('/v1/authentication/apikey')
          .set('X-Forwarded-For', newAddress())
          .send({ apiKey: key.apiKey })
      ).status,
    ).toBe(200);
  });

  it('should keep the counters in Postgres, as digests (no usernames or addresses in clear)', async () => {
    const rows: Array<{ key: Buffer; failures: number }> = await api.app
      .get(DataSource)
      .query('SELECT key, failures FROM login_failure');
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(Buffer.isBuffer(row.key)).toBe(true);
      expect(row.key.length).toBe(32);
    }
  });
});
