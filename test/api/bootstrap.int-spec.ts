import request from 'supertest';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, TEST_ADMIN_PASSWORD, type TestApi } from '../support/test-api';

/** Everything written to stdout while `fn` runs (the generated password is printed there, once). */
async function captureStdout<T>(fn: () => Promise<T>): Promise<{ result: T; out: string }> {
  const chunks: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    chunks.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  });
  try {
    return { result: await fn(), out: chunks.join('') };
  } finally {
    spy.mockRestore();
  }
}

const PRINTED_PASSWORD = /admin user "admin" created with password: (\S+)/g;

async function rootState(api: TestApi, token: string) {
  const me = (await request(api.url).get('/v1/authentication/info').set(bearer(token)).expect(200)).body;
  const account = (await request(api.url).get(`/v1/_/accounts/${me.scopeId}`).set(bearer(token)).expect(200))
    .body;
  const users = (await request(api.url).get('/v1/_/users?askTotalCount=true').set(bearer(token)).expect(200))
    .body;
  return { me, account, users };
}

describe('First start', () => {
  describe('with ADMIN_PASSWORD set', () => {
    let api: TestApi;

    beforeAll(async () => {
      api = await startTestApi({ ADMIN_PASSWORD: TEST_ADMIN_PASSWORD });
    });

    afterAll(async () => {
      await api?.stop();
    });

    it('should create the root account and an admin who signs in with that password', async () => {
      const token = await login(api, 'admin', TEST_ADMIN_PASSWORD);
      const { me, account, users } = await rootState(api, token);
      expect(me.role).toBe('admin');
      expect(account).toMatchObject({
        id: me.scopeId,
        name: 'root',
        scopeId: null,
        parentPath: [me.scopeId],
      });
      expect(account.vpnSubnet).toBe('10.200.0.0/20');
      expect(users.totalCount).toBe(1);
      expect(users.items[0]).toMatchObject({ username: 'admin', role: 'admin', enabled: true });
      // The root account has no parent to be listed in.
      const children = await request(api.url).get('/v1/_/accounts').set(bearer(token)).expect(200);
      expect(children.body.items).toEqual([]);
    });

    it('should not let the root admin delete the root account', async () => {
      const token = await login(api);
      const { me } = await rootState(api, token);
      const res = await request(api.url).delete(`/v1/_/accounts/${me.scopeId}`).set(bearer(token));
      expectError(res, 409, 'CONFLICT');
    });
  });

  describe('without ADMIN_PASSWORD', () => {
    let db: TestDatabase;
    let first: TestApi | undefined;
    let second: TestApi | undefined;
    let printed: string[];
    let firstOut: string;

    beforeAll(async () => {
      db = await createTestDatabase();
      const started = await captureStdout(() => startTestApi({ ADMIN_PASSWORD: '' }, { database: db }));
      first = started.result;
      firstOut = started.out;
      printed = [...firstOut.matchAll(PRINTED_PASSWORD)].map((m) => m[1]);
    });

    afterAll(async () => {
      await second?.stop();
      await first?.stop();
      await db?.drop();
    });

    it('should print a generated password once', () => {
      expect(printed).toHaveLength(1);
      expect(printed[0].length).toBeGreaterThanOrEqual(16);
      expect(printed[0]).not.toBe(TEST_ADMIN_PASSWORD);
    });

    it('should let the admin sign in with the printed password', async () => {
      const api = first as TestApi;
      const token = await login(api, 'admin', printed[0]);
      const { me, account } = await rootState(api, token);
      expect(me.role).toBe('admin');
      expect(account.name).toBe('root');
    });

    it('should not store the printed password in clear in the database', async () => {
      const { Client } = await import('pg');
      const c = new Client({ connectionString: db.url });
      await c.connect();
      try {
        const rows = await c.query<{ password_hash: string }>('SELECT password_hash FROM app_user');
        expect(rows.rows).toHaveLength(1);
        expect(rows.rows[0].password_hash).not.toContain(printed[0]);
        expect(rows.rows[0].password_hash).toMatch(/^scrypt\$/);
      } finally {
        await c.end();
      }
    });

    it('should neither create another admin nor print again when started again on the same database', async () => {
      const started = await captureStdout(() => startTestApi({ ADMIN_PASSWORD: '' }, { database: db }));
      second = started.result;
      expect(started.out).not.toMatch(/password/i);

      // A second start with ADMIN_PASSWORD set does not reset the admin's password either,
      // but says so (without the password).
      const warnings: string[] = [];
      const third = await captureStdout(() =>
        startTestApi(
          { ADMIN_PASSWORD: 'a-different-password', LOG_LEVEL: 'warn' },
          { database: db, logDestination: { write: (line) => warnings.push(line) } },
        ),
      );
      try {
        expect(third.out).not.toMatch(/password/i);
        const warning = warnings.find((l) => l.includes('ADMIN_PASSWORD differs'));
        expect(warning).toContain('ADMIN_PASSWORD_RESET=true');
        expect(warnings.join('\n')).not.toContain('a-different-password');
        expect(warnings.join('\n')).not.toContain(printed[0]);
        expectError(
          await request(third.result.url)
            .post('/v1/authentication/user')
            .send({ username: 'admin', password: 'a-different-password' }),
          401,
          'AUTH_FAILED',
        );
      } finally {
        await third.result.stop();
      }

      const token = await login(second, 'admin', printed[0]);
      const { account, users } = await rootState(second, token);
      expect(users.totalCount).toBe(1);
      const all = await request(second.url)
        .get('/v1/_/accounts?recursive=true&askTotalCount=true')
        .set(bearer(token))
        .expect(200);
      expect(all.body.totalCount).toBe(0);
      expect(account.name).toBe('root');
    });

    it('should replace the stored password by ADMIN_PASSWORD when started with ADMIN_PASSWORD_RESET=true', async () => {
      const lines: string[] = [];
      const reset = await startTestApi(
        { ADMIN_PASSWORD: 'the-reset-password', ADMIN_PASSWORD_RESET: 'true', LOG_LEVEL: 'warn' },
        { database: db, logDestination: { write: (line) => lines.push(line) } },
      );
      try {
        expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg).join('\n')).toContain(
          'ADMIN_PASSWORD_RESET=true: the password of admin user "admin" is now ADMIN_PASSWORD',
        );
        expect(lines.join('\n')).not.toContain('the-reset-password');
        await login(reset, 'admin', 'the-reset-password');
        expectError(
          await request(reset.url)
            .post('/v1/authentication/user')
            .send({ username: 'admin', password: printed[0] }),
          401,
          'AUTH_FAILED',
        );
      } finally {
        await reset.stop();
      }
      // The same password again: nothing to warn about, nothing reset.
      const quiet: string[] = [];
      const again = await startTestApi(
        { ADMIN_PASSWORD: 'the-reset-password', LOG_LEVEL: 'warn' },
        { database: db, logDestination: { write: (line) => quiet.push(line) } },
      );
      await again.stop();
      expect(quiet.filter((l) => l.includes('ADMIN_PASSWORD'))).toEqual([]);
    });
  });
});
