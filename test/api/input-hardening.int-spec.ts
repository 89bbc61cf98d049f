import { createServer, connect, type Server, type Socket } from 'node:net';
import request from 'supertest';
import { createAccount, createUser, suffix } from '../support/factories';
import { createTestDatabase } from '../support/database';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, TEST_ADMIN_PASSWORD, type TestApi } from '../support/test-api';
import { eventually } from '../support/eventually';

type Method = 'get' | 'post' | 'put' | 'patch';

/**
 * Input that used to answer 500 (attack run, finding D): NUL and other control characters,
 * optlock values beyond Postgres' integer, null in optional fields, JSON nested thousands deep,
 * and a database that refuses connections. Every one must answer a 4xx (or 503) with the
 * documented error body.
 */
describe('Hostile input', () => {
  let api: TestApi;
  let token: string;
  let account: { id: string; optlock: number };
  let user: { id: string; optlock: number };
  let device: { id: string; optlock: number };
  let gateway: { id: string; optlock: number };

  const send = (method: Method, path: string, body?: unknown, auth = true) => {
    let req = request(api.url)[method](path);
    if (auth) req = req.set(bearer(token));
    if (body === undefined) return req;
    return typeof body === 'string'
      ? req.set('Content-Type', 'application/json').send(body)
      : req.send(body as object);
  };

  beforeAll(async () => {
    api = await startTestApi();
    token = await login(api);
    account = await createAccount(api, token);
    user = await createUser(api, token, '_', 'viewer');
    device = (await send('post', '/v1/_/devices', { clientId: `dev-${suffix()}` }).expect(201)).body;
    gateway = (
      await send('post', '/v1/_/gateways', {
        name: `gw-${suffix()}`,
        endpoint: 'vpn.example.com:51820',
      }).expect(201)
    ).body;
  });

  afterAll(async () => {
    await api?.stop();
  });

  describe('NUL and other control characters', () => {
    const cases: Array<[string, Method, () => string, (s: string) => object, boolean?]> = [
      [
        'sign-in username',
        'post',
        () => '/v1/authentication/user',
        (s) => ({ username: `a${s}b`, password: 'x' }),
        false,
      ],
      [
        'sign-in password',
        'post',
        () => '/v1/authentication/user',
        (s) => ({ username: 'admin', password: `pw${s}` }),
        false,
      ],
      ['API key sign-in', 'post', () => '/v1/authentication/apikey', (s) => ({ apiKey: `vpk_${s}` }), false],
      [
        'FendVPN sign-in',
        'post',
        () => '/api/client/signin',
        (s) => ({
          project: 'root',
          client_platform: 'linux',
          client_version: '1.0',
          device_id: `laptop${s}`,
          auth_type: 'password',
          auth_info: `admin:${s}`,
        }),
        false,
      ],
      [
        'account description',
        'post',
        () => '/v1/_/accounts',
        (s) => ({ name: `acct-${suffix()}`, description: `a${s}b` }),
      ],
      [
        'account update',
        'put',
        () => `/v1/_/accounts/${account.id}`,
        (s) => ({ description: s, optlock: account.optlock }),
      ],
      [
        'user password',
        'post',
        () => '/v1/_/users',
        (s) => ({ username: `u-${suffix()}`, password: `long-enough${s}`, role: 'viewer' }),
      ],
      [
        'user update',
        'put',
        () => `/v1/_/users/${user.id}`,
        (s) => ({ password: `long-enough${s}`, optlock: user.optlock }),
      ],
      [
        'device display name',
        'post',
        () => '/v1/_/devices',
        (s) => ({ clientId: `d-${suffix()}`, displayName: `a${s}` }),
      ],
      [
        'device update',
        'put',
        () => `/v1/_/devices/${device.id}`,
        (s) => ({ displayName: s, optlock: device.optlock }),
      ],
      [
        'gateway description',
        'post',
        () => '/v1/_/gateways',
        (s) => ({ name: `g-${suffix()}`, endpoint: 'vpn.example.com:51820', description: s }),
      ],
      [
        'gateway update',
        'patch',
        () => `/v1/_/gateways/${gateway.id}`,
        (s) => ({ description: s, optlock: gateway.optlock }),
      ],
      ['API key name', 'post', () => '/v1/_/apikeys', (s) => ({ name: `k${s}`, role: 'viewer' })],
      [
        'a property name',
        'post',
        () => '/v1/_/accounts',
        (s) => ({ name: `acct-${suffix()}`, [`desc${s}`]: 'x' }),
      ],
    ];

    for (const char of ['\u0000', '\u0001', '\u001b', '\u007f']) {
      const code = `U+${char.charCodeAt(0).toString(16).padStart(4, '0').toUpperCase()}`;
      it.each(cases)(
        `should answer 400 for ${code} in the %s`,
        async (_what, method, path, body, auth = true) => {
          const res = await send(method, path(), body(char), auth);
          expectError(res, 400, 'INVALID_ARGUMENT');
        },
      );
    }

    it.each([
      ['a user filter', '/v1/_/users?username=a%00b'],
      ['a device search', '/v1/_/devices?matchTerm=%00'],
      ['an account name filter', '/v1/_/accounts?name=x%01y'],
      ['a path segment', '/v1/_/users/%00'],
    ])('should answer 400 for a control character in %s', async (_what, path) => {
      expectError(await send('get', path), 400, 'INVALID_ARGUMENT');
    });

    it('should answer 400 for a lone UTF-16 surrogate', async () => {
      const res = await send(
        'post',
        '/v1/_/accounts',
        `{"name":"acct-${suffix()}","description":"a\\ud800b"}`,
      );
      expectError(res, 400, 'INVALID_ARGUMENT');
    });

    it('should keep accepting tabs and line breaks in free text', async () => {
      const res = await send('post', '/v1/_/accounts', {
        name: `acct-${suffix()}`,
        description: 'line 1\r\n\tline 2',
      });
      expect(res.status).toBe(201);
      expect(res.body.description).toBe('line 1\r\n\tline 2');
    });
  });

  describe('optlock beyond a 32-bit integer', () => {
    const updates: Array<[string, Method, () => string, () => object]> = [
      ['account', 'put', () => `/v1/_/accounts/${account.id}`, () => ({ description: 'x' })],
      ['user', 'put', () => `/v1/_/users/${user.id}`, () => ({ role: 'viewer' })],
      ['device', 'put', () => `/v1/_/devices/${device.id}`, () => ({ displayName: 'x' })],
      ['gateway', 'patch', () => `/v1/_/gateways/${gateway.id}`, () => ({ description: 'x' })],
    ];

    for (const optlock of [2 ** 31, 2 ** 32 + 1, Number.MAX_SAFE_INTEGER, 1e300]) {
      it.each(updates)(
        `should answer 400 naming optlock for a %s update with optlock ${optlock}`,
        async (_w, method, path, body) => {
          const res = await send(method, path(), { ...body(), optlock });
          expectError(res, 400, 'INVALID_ARGUMENT');
          expect(res.body.error).toContain('optlock');
        },
      );
    }

    it.each(updates)(
      'should still answer 409 for a stale but valid optlock (%s)',
      async (_w, method, path, body) => {
        expectError(await send(method, path(), { ...body(), optlock: 2 ** 31 - 1 }), 409, 'OPTLOCK_CONFLICT');
      },
    );
  });

  describe('null in optional fields', () => {
    const cases: Array<[string, Method, () => string, () => object]> = [
      [
        'user password',
        'put',
        () => `/v1/_/users/${user.id}`,
        () => ({ password: null, optlock: user.optlock }),
      ],
      ['user role', 'put', () => `/v1/_/users/${user.id}`, () => ({ role: null, optlock: user.optlock })],
      [
        'user enabled',
        'put',
        () => `/v1/_/users/${user.id}`,
        () => ({ enabled: null, optlock: user.optlock }),
      ],
      [
        'account description',
        'put',
        () => `/v1/_/accounts/${account.id}`,
        () => ({ description: null, optlock: account.optlock }),
      ],
      [
        'new account description',
        'post',
        () => '/v1/_/accounts',
        () => ({ name: `acct-${suffix()}`, description: null }),
      ],
      [
        'new account vpnSubnet',
        'post',
        () => '/v1/_/accounts',
        () => ({ name: `acct-${suffix()}`, vpnSubnet: null }),
      ],
      [
        'device displayName',
        'put',
        () => `/v1/_/devices/${device.id}`,
        () => ({ displayName: null, optlock: device.optlock }),
      ],
      [
        'device status',
        'put',
        () => `/v1/_/devices/${device.id}`,
        () => ({ status: null, optlock: device.optlock }),
      ],
      [
        'new device gatewayId',
        'post',
        () => '/v1/_/devices',
        () => ({ clientId: `d-${suffix()}`, gatewayId: null }),
      ],
      [
        'gateway endpoint',
        'patch',
        () => `/v1/_/gateways/${gateway.id}`,
        () => ({ endpoint: null, optlock: gateway.optlock }),
      ],
      [
        'gateway description',
        'patch',
        () => `/v1/_/gateways/${gateway.id}`,
        () => ({ description: null, optlock: gateway.optlock }),
      ],
    ];

    it.each(cases)(
      'should answer 400 naming the field for null in the %s',
      async (what, method, path, body) => {
        const res = await send(method, path(), body());
        expectError(res, 400, 'INVALID_ARGUMENT');
        const field = Object.entries(body()).find(([, v]) => v === null)![0];
        expect(res.body.error).toContain(field);
        expect(res.body.details).toContain(`${field} must not be null`);
        void what;
      },
    );

    it('should change nothing for a null password, and the old password still works', async () => {
      const before = (await send('get', `/v1/_/users/${user.id}`).expect(200)).body;
      expectError(
        await send('put', `/v1/_/users/${user.id}`, { optlock: before.optlock, password: null }),
        400,
        'INVALID_ARGUMENT',
      );
      expect((await send('get', `/v1/_/users/${user.id}`).expect(200)).body).toEqual(before);
    });

    it('should still accept null where the API documents it (unpinning a device from its gateway)', async () => {
      const current = (await send('get', `/v1/_/devices/${device.id}`).expect(200)).body;
      const res = await send('put', `/v1/_/devices/${device.id}`, {
        gatewayId: null,
        optlock: current.optlock,
      });
      expect(res.status).toBe(200);
      device = res.body;
    });
  });

  describe('deeply nested JSON', () => {
    const deepArray = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
    const deepObject = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

    it.each([
      ['sign-in (public)', '/v1/authentication/user', false],
      ['API key sign-in (public)', '/v1/authentication/apikey', false],
      ['refresh (public)', '/v1/authentication/refresh', false],
      ['FendVPN sign-in (public)', '/api/client/signin', false],
      ['account creation', '/v1/_/accounts', true],
      ['user creation', '/v1/_/users', true],
      ['device creation', '/v1/_/devices', true],
      ['FendVPN connect', '/api/client/connect', true],
    ])('should answer 400 for JSON nested 5,000 deep on %s', async (_what, path, auth) => {
      for (const body of [
        `{"username":${deepArray(5000)},"password":"x"}`,
        `{"name":${deepObject(5000)}}`,
        deepArray(5000),
      ]) {
        expectError(await send('post', path, body, auth), 400, 'INVALID_ARGUMENT');
      }
    });

    it('should name the nesting limit, and still validate ordinary nested bodies', async () => {
      const res = await send('post', '/v1/_/accounts', `{"name":${deepObject(100)}}`);
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(`${res.body.error} ${res.body.details}`).toMatch(/nest/i);
      const connect = await send('post', '/api/client/connect', {
        type: 'wireguard',
        info_wireguard: { public_key: 'not-a-key' },
        identifiers: { installation_id: 'i', session_id: 's' },
        location: '00000000-0000-4000-8000-000000000000',
      });
      expectError(connect, 400, 'INVALID_ARGUMENT');
      expect(connect.body.error).toContain('info_wireguard');
    });
  });

  describe('when the database refuses connections', () => {
    /** A TCP relay in front of Postgres that the test can cut and restore. */
    let relay: Server;
    let relayPort: number;
    const sockets = new Set<Socket>();
    let downApi: TestApi;
    let downToken: string;

    const listen = () =>
      new Promise<void>((resolve, reject) => {
        relay.once('error', reject);
        relay.listen(relayPort, '127.0.0.1', () => {
          relay.off('error', reject);
          resolve();
        });
      });

    beforeAll(async () => {
      const db = await createTestDatabase();
      const target = new URL(db.url);
      relay = createServer((client) => {
        const upstream = connect(Number(target.port || 5432), target.hostname);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
          s.on('error', () => undefined);
        }
        client.pipe(upstream).pipe(client);
      });
      relayPort = 0;
      await listen();
      relayPort = (relay.address() as { port: number }).port;
      const relayed = new URL(db.url);
      relayed.hostname = '127.0.0.1';
      relayed.port = String(relayPort);
      downApi = await startTestApi({}, { database: { url: relayed.toString(), drop: db.drop } });
      downToken = await login(downApi);
      // Cut it: no new connections, and the pool's open ones are dropped.
      const closed = new Promise<void>((resolve) => relay.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    });

    afterAll(async () => {
      if (!relay.listening) await listen().catch(() => undefined);
      await downApi?.stop();
      await downApi?.db.drop();
      relay.close();
      for (const s of sockets) s.destroy();
    });

    it.each([
      ['an authenticated read', 'get', '/v1/_/accounts', undefined, true],
      [
        'a sign-in',
        'post',
        '/v1/authentication/user',
        { username: 'admin', password: TEST_ADMIN_PASSWORD },
        false,
      ],
      ['a creation', 'post', '/v1/_/accounts', { name: 'while-down' }, true],
    ] as Array<[string, Method, string, object | undefined, boolean]>)(
      'should answer 503 SERVICE_UNAVAILABLE with Retry-After to %s',
      async (_what, method, path, body, auth) => {
        let req = request(downApi.url)[method](path);
        if (auth) req = req.set(bearer(downToken));
        const res = body ? await req.send(body) : await req;
        expectError(res, 503, 'SERVICE_UNAVAILABLE');
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      },
    );

    it('should answer again once the database is back', async () => {
      await listen();
      await eventually(
        async () =>
          expect((await request(downApi.url).get('/v1/_/accounts').set(bearer(downToken))).status).toBe(200),
        5000,
        100,
      );
    });
  });
});
