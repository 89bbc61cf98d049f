import request from 'supertest';
import {
  createAccount,
  createApiKey,
  createTenant,
  createUser,
  loginApiKey,
  suffix,
  type RoleName,
  type Tenant,
} from '../support/factories';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';

/**
 * Each route against each role: refused with 403 FORBIDDEN without its
 * permission, allowed with it. The expected grants are written out from the
 * design (README, REST conventions), not read from roles.ts, so a change there shows up here.
 */
const READ_ALL = [
  'account:read',
  'user:read',
  'apikey:read',
  'device:read',
  'vpn:read',
  'gateway:read',
  'webhook:read',
];
const GRANTS: Record<RoleName, string[]> = {
  admin: [
    ...READ_ALL,
    'account:write',
    'user:write',
    'apikey:write',
    'device:write',
    'vpn:connect',
    'vpn:session',
    'gateway:write',
    'webhook:write',
  ],
  operator: [...READ_ALL, 'device:write', 'vpn:connect', 'vpn:session'],
  viewer: READ_ALL,
};

interface Fixture {
  api: TestApi;
  /** Token of the tenant's admin: prepares targets and checks the outcome. */
  adminToken: string;
}

interface RouteCase {
  route: string;
  permission: string;
  status: number;
  /** Prepares what the route needs, calls it with `token`, and returns a check of the outcome. */
  run(
    f: Fixture,
    token: string,
  ): Promise<{ res: request.Response; verify?: (allowed: boolean) => Promise<void> }>;
}

const get = (f: Fixture, path: string) => request(f.api.url).get(path).set(bearer(f.adminToken));

const ROUTES: RouteCase[] = [
  {
    route: 'GET /v1/_/accounts',
    permission: 'account:read',
    status: 200,
    run: async (f, token) => ({ res: await request(f.api.url).get('/v1/_/accounts').set(bearer(token)) }),
  },
  {
    route: 'POST /v1/_/accounts',
    permission: 'account:write',
    status: 201,
    run: async (f, token) => {
      const name = `acct-${suffix()}`;
      const res = await request(f.api.url).post('/v1/_/accounts').set(bearer(token)).send({ name });
      return {
        res,
        verify: async (allowed) => {
          const list = await get(f, `/v1/_/accounts?name=${name}`).expect(200);
          expect(list.body.size).toBe(allowed ? 1 : 0);
        },
      };
    },
  },
  {
    route: 'GET /v1/_/accounts/{id}',
    permission: 'account:read',
    status: 200,
    run: async (f, token) => {
      const child = await createAccount(f.api, f.adminToken);
      return { res: await request(f.api.url).get(`/v1/_/accounts/${child.id}`).set(bearer(token)) };
    },
  },
  {
    route: 'PUT /v1/_/accounts/{id}',
    permission: 'account:write',
    status: 200,
    run: async (f, token) => {
      const child = await createAccount(f.api, f.adminToken, { description: 'before' });
      const res = await request(f.api.url)
        .put(`/v1/_/accounts/${child.id}`)
        .set(bearer(token))
        .send({ description: 'after', optlock: child.optlock });
      return {
        res,
        verify: async (allowed) => {
          const read = await get(f, `/v1/_/accounts/${child.id}`).expect(200);
          expect(read.body.description).toBe(allowed ? 'after' : 'before');
        },
      };
    },
  },
  {
    route: 'DELETE /v1/_/accounts/{id}',
    permission: 'account:write',
    status: 204,
    run: async (f, token) => {
      const child = await createAccount(f.api, f.adminToken);
      const res = await request(f.api.url).delete(`/v1/_/accounts/${child.id}`).set(bearer(token));
      return {
        res,
        verify: async (allowed) => {
          await get(f, `/v1/_/accounts/${child.id}`).expect(allowed ? 404 : 200);
        },
      };
    },
  },
  {
    route: 'GET /v1/_/users',
    permission: 'user:read',
    status: 200,
    run: async (f, token) => ({ res: await request(f.api.url).get('/v1/_/users').set(bearer(token)) }),
  },
  {
    route: 'POST /v1/_/users',
    permission: 'user:write',
    status: 201,
    run: async (f, token) => {
      const username = `user-${suffix()}`;
      const res = await request(f.api.url)
        .post('/v1/_/users')
        .set(bearer(token))
        .send({ username, password: 'long-enough-password', role: 'viewer' });
      return {
        res,
        verify: async (allowed) => {
          const list = await get(f, `/v1/_/users?username=${username}`).expect(200);
          expect(list.body.size).toBe(allowed ? 1 : 0);
        },
      };
    },
  },
  {
    route: 'GET /v1/_/users/{id}',
    permission: 'user:read',
    status: 200,
    run: async (f, token) => {
      const user = await createUser(f.api, f.adminToken, '_', 'viewer');
      return { res: await request(f.api.url).get(`/v1/_/users/${user.id}`).set(bearer(token)) };
    },
  },
  {
    route: 'PUT /v1/_/users/{id}',
    permission: 'user:write',
    status: 200,
    run: async (f, token) => {
      const user = await createUser(f.api, f.adminToken, '_', 'viewer');
      const res = await request(f.api.url)
        .put(`/v1/_/users/${user.id}`)
        .set(bearer(token))
        .send({ role: 'admin', optlock: user.optlock });
      return {
        res,
        verify: async (allowed) => {
          const read = await get(f, `/v1/_/users/${user.id}`).expect(200);
          expect(read.body.role).toBe(allowed ? 'admin' : 'viewer');
        },
      };
    },
  },
  {
    route: 'DELETE /v1/_/users/{id}',
    permission: 'user:write',
    status: 204,
    run: async (f, token) => {
      const user = await createUser(f.api, f.adminToken, '_', 'viewer');
      const res = await request(f.api.url).delete(`/v1/_/users/${user.id}`).set(bearer(token));
      return {
        res,
        verify: async (allowed) => {
          await get(f, `/v1/_/users/${user.id}`).expect(allowed ? 404 : 200);
        },
      };
    },
  },
  {
    route: 'GET /v1/_/apikeys',
    permission: 'apikey:read',
    status: 200,
    run: async (f, token) => ({ res: await request(f.api.url).get('/v1/_/apikeys').set(bearer(token)) }),
  },
  {
    route: 'POST /v1/_/apikeys',
    permission: 'apikey:write',
    status: 201,
    run: async (f, token) => {
      const name = `key-${suffix()}`;
      const res = await request(f.api.url)
        .post('/v1/_/apikeys')
        .set(bearer(token))
        .send({ name, role: 'viewer' });
      return {
        res,
        verify: async (allowed) => {
          const list = await get(f, '/v1/_/apikeys?limit=500').expect(200);
          const names = (list.body.items as Array<{ name: string }>).map((k) => k.name);
          expect(names.includes(name)).toBe(allowed);
        },
      };
    },
  },
  {
    route: 'GET /v1/_/apikeys/{id}',
    permission: 'apikey:read',
    status: 200,
    run: async (f, token) => {
      const key = await createApiKey(f.api, f.adminToken, '_', 'viewer');
      return { res: await request(f.api.url).get(`/v1/_/apikeys/${key.id}`).set(bearer(token)) };
    },
  },
  {
    route: 'DELETE /v1/_/apikeys/{id}',
    permission: 'apikey:write',
    status: 204,
    run: async (f, token) => {
      const key = await createApiKey(f.api, f.adminToken, '_', 'viewer');
      const res = await request(f.api.url).delete(`/v1/_/apikeys/${key.id}`).set(bearer(token));
      return {
        res,
        verify: async (allowed) => {
          await get(f, `/v1/_/apikeys/${key.id}`).expect(allowed ? 404 : 200);
        },
      };
    },
  },
];

const CASES = (['admin', 'operator', 'viewer'] as const).flatMap((role) =>
  ROUTES.map((r) => {
    const allowed = GRANTS[role].includes(r.permission);
    const title = allowed
      ? `should allow ${role} to call ${r.route}`
      : `should refuse ${role} ${r.route} with 403`;
    return { ...r, role, allowed, title };
  }),
);

describe('Role permissions on account, user and API key routes', () => {
  let api: TestApi;
  let tenant: Tenant;
  const userTokens = {} as Record<RoleName, string>;
  const keyTokens = {} as Record<RoleName, string>;

  beforeAll(async () => {
    api = await startTestApi();
    const root = await login(api);
    // The callers live in a tenant account, not the root, as integrators' users do.
    tenant = await createTenant(api, root);
    for (const role of ['admin', 'operator', 'viewer'] as const) {
      userTokens[role] = (await createUser(api, root, tenant.account.id, role)).token;
      const key = await createApiKey(api, root, tenant.account.id, role);
      keyTokens[role] = await loginApiKey(api, key.apiKey);
    }
  });

  afterAll(async () => {
    await api?.stop();
  });

  describe.each([
    ['signed in as a user', userTokens],
    ['signed in with an API key', keyTokens],
  ])('%s', (_principal, tokens) => {
    it.each(CASES)('$title', async (c) => {
      const f = { api, adminToken: tenant.admin.token };
      const { res, verify } = await c.run(f, tokens[c.role]);
      if (c.allowed) {
        expect({ status: res.status, body: res.status === c.status ? undefined : res.body }).toEqual({
          status: c.status,
          body: undefined,
        });
      } else {
        expectError(res, 403, 'FORBIDDEN');
        expect(res.body.details).toContain(c.permission);
      }
      await verify?.(c.allowed);
    });
  });

  it.each(['admin', 'operator', 'viewer'] as const)(
    'should let the %s role read its own token info and log out',
    async (role) => {
      const user = await createUser(api, tenant.admin.token, '_', role);
      const me = await request(api.url).get('/v1/authentication/info').set(bearer(user.token)).expect(200);
      expect(me.body.role).toBe(role);
      expect(me.body.permissions).toEqual([...GRANTS[role]].sort());
      await request(api.url).post('/v1/authentication/logout').set(bearer(user.token)).expect(204);
    },
  );
});
