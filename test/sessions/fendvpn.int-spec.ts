import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { ResponseCodes, type GatewayPeer } from '@app/protocol';
import { TokenService, type IssuedToken } from '../../apps/api/src/auth/token.service';
import { eventually } from '../support/eventually';
import {
  createAccount,
  createApiKey,
  createTenant,
  createUser,
  type AccountBody,
  type CreatedUser,
  type Tenant,
} from '../support/factories';
import { wireGuardKey, type FakeGateway } from '../support/fake-gateway';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';
import {
  CLIENT_POOL,
  Closer,
  createGateway,
  startGateway,
  type GatewayBody,
} from '../gateways/gateway-fixtures';
import {
  addressesFor,
  clientPeer,
  clientPeers,
  devicePeer,
  getSession,
  inCidr,
  listSessions,
  simulatedDevice,
  type SessionBody,
} from './session-fixtures';

const SERVER_IPV4 = '192.0.2.10';
const ENDPOINT = `${SERVER_IPV4}:51820`;
const DEFAULT_PING_INTERVAL = 30;
const DEFAULT_KEEPALIVE = 25;

/** A peer with its allow list in a fixed order (the API's order is the database's collation). */
const sortedAllow = (p: GatewayPeer | undefined): GatewayPeer | undefined =>
  p && { ...p, allow: [...p.allow].sort() };

const signinBody = (project: string, authType: string, authInfo: string): Record<string, string> => ({
  project,
  client_platform: 'linux',
  client_version: '1.4.2',
  device_id: 'laptop-7f3a',
  auth_type: authType,
  auth_info: authInfo,
});

const connectBody = (
  location: string,
  publicKey: string,
  ids: { installation_id?: string; session_id?: string } = {},
) => ({
  type: 'wireguard',
  info_wireguard: { public_key: publicKey },
  identifiers: { installation_id: ids.installation_id ?? 'laptop-1', session_id: ids.session_id ?? 's1' },
  location,
});

describe('FendVPN client API (/api/client, FakeGateway, simulated devices)', () => {
  let api: TestApi;
  let rootToken: string;
  const closer = new Closer();

  beforeAll(async () => {
    api = await startTestApi();
    rootToken = await login(api);
  });

  afterEach(async () => {
    await closer.closeAll();
  });

  afterAll(async () => {
    await closer.closeAll();
    await api?.stop();
  });

  const signin = (body: object) => request(api.url).post('/api/client/signin').send(body);
  const fendGet = (token: string, path: string, query: Record<string, string> = {}) =>
    request(api.url).get(`/api/client/${path}`).query(query).set(bearer(token));
  const fendPost = (token: string, path: string, body: object) =>
    request(api.url).post(`/api/client/${path}`).set(bearer(token)).send(body);

  /** Signs a user in to `project` with its password; the FendVPN access token. */
  const signinUser = async (project: string, user: CreatedUser): Promise<string> => {
    const res = await signin(signinBody(project, 'password', `${user.username}:${user.password}`));
    if (res.status !== 200) throw new Error(`signin: ${res.status} ${res.text}`);
    return res.body.access_token as string;
  };

  const accessTokenCount = async (): Promise<number> => {
    const rows: Array<{ n: string }> = await api.app
      .get(DataSource)
      .query('SELECT count(*) AS n FROM access_token');
    return Number(rows[0].n);
  };

  /** Runs `signinCall` and returns what TokenService.issue handed out meanwhile. */
  const issuedDuring = async (
    signinCall: () => Promise<request.Response>,
  ): Promise<{ res: request.Response; issued: IssuedToken[] }> => {
    const spy = jest.spyOn(api.app.get(TokenService), 'issue');
    let results: Array<Promise<IssuedToken>>;
    let res: request.Response;
    try {
      res = await signinCall();
      results = spy.mock.results.map((r) => r.value as Promise<IssuedToken>);
    } finally {
      spy.mockRestore();
    }
    return { res, issued: await Promise.all(results) };
  };

  /** A tenant with a gateway of its own (served by a FakeGateway) at `endpoint`. */
  const tenantWithGateway = async (
    endpoint = ENDPOINT,
  ): Promise<{ t: Tenant; gateway: GatewayBody; fake: FakeGateway; token: string }> => {
    const t = await createTenant(api, rootToken);
    const { gateway, fake } = await startGateway(api, t.admin.token, '_', { endpoint });
    closer.add(fake);
    return { t, gateway, fake, token: await signinUser(t.account.name, t.admin) };
  };

  /**
   * A site: account `t` (signed in to FendVPN as its admin) with a child account, and a sibling
   * tenant, all under a parent account whose gateway serves the devices of the three of them.
   */
  interface Tree {
    parent: Tenant;
    t: Tenant;
    child: AccountBody;
    sibling: Tenant;
    gateway: GatewayBody;
    fake: FakeGateway;
    own: { key: string; device: { id: string; tunnelAddress: string } };
    inChild: { key: string; device: { id: string; tunnelAddress: string } };
    inSibling: { key: string; device: { id: string; tunnelAddress: string } };
    token: string;
  }

  const tree = async (): Promise<Tree> => {
    const parent = await createTenant(api, rootToken);
    const { gateway, fake } = await startGateway(api, parent.admin.token, '_', { endpoint: ENDPOINT });
    closer.add(fake);
    const t = await createTenant(api, rootToken, { parentScope: parent.account.id });
    const child = await createAccount(api, t.admin.token);
    const sibling = await createTenant(api, rootToken, { parentScope: parent.account.id });
    const own = await simulatedDevice(api, closer, t.admin.token, t.account);
    const inChild = await simulatedDevice(api, closer, t.admin.token, child, { scope: child.id });
    const inSibling = await simulatedDevice(api, closer, sibling.admin.token, sibling.account);
    expect([...fake.peers.keys()].sort()).toEqual([own.key, inChild.key, inSibling.key].sort());
    const token = await signinUser(t.account.name, t.admin);
    return { parent, t, child, sibling, gateway, fake, own, inChild, inSibling, token };
  };

  describe('signin', () => {
    it('should sign a user in to its own project with its password', async () => {
      const t = await createTenant(api, rootToken);
      const res = await signin(
        signinBody(t.account.name, 'password', `${t.admin.username}:${t.admin.password}`),
      );
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        access_token: expect.any(String),
        refresh_token: expect.any(String),
        discovery_addresses: [api.url],
      });
      await fendGet(res.body.access_token, 'locations').expect(200);
      // The same token works on the cloud's own API, in the user's account.
      const accounts = await request(api.url)
        .get('/v1/_/vpn/sessions')
        .set(bearer(res.body.access_token))
        .expect(200);
      expect(accounts.body.items).toEqual([]);
    });

    it('should sign an API key in to its project (auth_type api_key), and record the key on its sessions', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const key = await createApiKey(api, t.admin.token, '_', 'operator');
      const res = await signin(signinBody(t.account.name, 'api_key', key.apiKey));
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        access_token: expect.any(String),
        refresh_token: expect.any(String),
        discovery_addresses: [api.url],
      });
      const token = res.body.access_token as string;
      const locations = await fendGet(token, 'locations').expect(200);
      expect(locations.body.map((l: { id: string }) => l.id)).toEqual([gateway.id]);

      const clientKey = wireGuardKey();
      await fendPost(token, 'connect', connectBody(gateway.id, clientKey)).expect(200);
      expect(fake.peers.has(clientKey)).toBe(true);
      const [session] = await listSessions(api, t.admin.token, '_');
      expect(session).toMatchObject({ kind: 'site', userId: null, apiKeyId: key.id, endedOn: null });
    });

    it.each(['password', 'api_key'])(
      'should refuse a wrong project with 401 AUTH_FAILED (%s) and revoke the token it issued',
      async (authType) => {
        const t = await createTenant(api, rootToken);
        const other = await createTenant(api, rootToken);
        const child = await createAccount(api, t.admin.token);
        const key = await createApiKey(api, t.admin.token, '_', 'operator');
        const authInfo = authType === 'password' ? `${t.admin.username}:${t.admin.password}` : key.apiKey;
        // Another tenant's project, the account's own child, its parent (root), one that does not exist.
        for (const project of [other.account.name, child.name, 'root', `nope-${randomUUID().slice(0, 8)}`]) {
          const { res, issued } = await issuedDuring(() => signin(signinBody(project, authType, authInfo)));
          expectError(res, 401, 'AUTH_FAILED');
          expect(res.text).not.toMatch(/access_token|refresh_token/);
          for (const token of issued) {
            expectError(await fendGet(token.tokenId, 'locations'), 401, 'UNAUTHORIZED');
            expectError(
              await request(api.url).get('/v1/_/vpn/sessions').set(bearer(token.tokenId)),
              401,
              'UNAUTHORIZED',
            );
            const refreshed = await request(api.url)
              .post('/v1/authentication/refresh')
              .send({ tokenId: token.tokenId, refreshToken: token.refreshToken });
            expect(refreshed.status).toBe(401);
          }
        }
      },
    );

    it('should refuse a wrong password, an unknown user or an unknown API key with 401 AUTH_FAILED, issuing no token', async () => {
      const t = await createTenant(api, rootToken);
      const before = await accessTokenCount();
      for (const body of [
        signinBody(t.account.name, 'password', `${t.admin.username}:wrong-password`),
        signinBody(t.account.name, 'password', `nobody-${randomUUID()}:${t.admin.password}`),
        signinBody(t.account.name, 'api_key', 'not-an-api-key'),
      ]) {
        const { res, issued } = await issuedDuring(() => signin(body));
        expectError(res, 401, 'AUTH_FAILED');
        expect(issued).toEqual([]);
      }
      expect(await accessTokenCount()).toBe(before);
      // A right signin afterwards is not throttled.
      await signinUser(t.account.name, t.admin);
    });

    it('should refuse a disabled user with 401 AUTH_FAILED', async () => {
      const t = await createTenant(api, rootToken);
      const operator = await createUser(api, t.admin.token, '_', 'operator');
      await request(api.url)
        .put(`/v1/_/users/${operator.id}`)
        .set(bearer(t.admin.token))
        .send({ enabled: false, optlock: operator.optlock })
        .expect(200);
      const { res, issued } = await issuedDuring(() =>
        signin(signinBody(t.account.name, 'password', `${operator.username}:${operator.password}`)),
      );
      expectError(res, 401, 'AUTH_FAILED');
      expect(issued).toEqual([]);
    });

    it.each([
      ['auth_info without a colon', { auth_info: 'admin-and-no-password' }],
      ['auth_info without a username', { auth_info: ':a-password' }],
    ])('should refuse %s with 400 INVALID_ARGUMENT, issuing no token', async (_what, change) => {
      const t = await createTenant(api, rootToken);
      const { res, issued } = await issuedDuring(() =>
        signin({ ...signinBody(t.account.name, 'password', ''), ...change }),
      );
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(res.body.details).toContain('auth_info');
      expect(issued).toEqual([]);
    });

    it.each([
      ['a missing project', { project: undefined }],
      ['a project that is no account name', { project: 'Not A Name!' }],
      ['an unknown auth_type', { auth_type: 'oauth' }],
      ['an empty auth_info', { auth_info: '' }],
      ['a missing client_platform', { client_platform: undefined }],
      ['an extra field', { remember_me: true }],
    ])('should refuse a signin with %s with 400 INVALID_ARGUMENT', async (_what, change) => {
      const body: Record<string, unknown> = {
        ...signinBody('acme', 'password', 'admin:password'),
        ...change,
      };
      for (const [k, v] of Object.entries(body)) if (v === undefined) delete body[k];
      const res = await signin(body);
      expectError(res, 400, 'INVALID_ARGUMENT');
    });
  });

  describe('locations and credentials', () => {
    it('should offer only gateways with a key whose endpoint is or resolves to IPv4, labelled online or offline', async () => {
      const t = await createTenant(api, rootToken);
      const started = async (endpoint: string) => {
        const { gateway, fake } = await startGateway(api, t.admin.token, '_', { endpoint });
        closer.add(fake);
        return { gateway, fake };
      };
      const online = await started('192.0.2.20:51820');
      const offline = await started('192.0.2.21:51821');
      const byName = await started('localhost:51822');
      await started('[fd00::1]:51820');
      await started('gw.invalid:51820');
      await createGateway(api, t.admin.token, '_', { endpoint: '192.0.2.22:51820' }); // never connected: no key
      const other = await createTenant(api, rootToken);
      closer.add((await startGateway(api, other.admin.token, '_', { endpoint: '192.0.2.23:51820' })).fake);
      await offline.fake.disconnect();
      await eventually(async () => {
        const res = await request(api.url)
          .get(`/v1/_/gateways/${offline.gateway.id}`)
          .set(bearer(t.admin.token))
          .expect(200);
        expect(res.body.connection).toBe('DISCONNECTED');
      });

      const token = await signinUser(t.account.name, t.admin);
      const res = await fendGet(token, 'locations');
      expect(res.status).toBe(200);
      expect(res.body).toEqual([
        { id: online.gateway.id, name: online.gateway.name, labels: ['online'] },
        { id: offline.gateway.id, name: offline.gateway.name, labels: ['offline'] },
        { id: byName.gateway.id, name: byName.gateway.name, labels: ['online'] },
      ]);
      // The cloud's own list shows all six.
      const all = await request(api.url).get('/v1/_/vpn/locations').set(bearer(t.admin.token)).expect(200);
      expect(all.body.items).toHaveLength(6);
    });

    it('should name this API as the address of an offered location, and answer 404 for any other location', async () => {
      const { t, gateway, token } = await tenantWithGateway();
      const { gateway: v6, fake: v6Fake } = await startGateway(api, t.admin.token, '_', {
        endpoint: '[fd00::1]:51820',
      });
      closer.add(v6Fake);
      const other = await tenantWithGateway();

      const res = await fendGet(token, 'credentials', { location: gateway.id });
      expect(res.status).toBe(200);
      expect(res.body).toEqual([{ id: gateway.id, connection_addresses: [api.url] }]);

      for (const location of [v6.id, other.gateway.id, randomUUID()]) {
        expectError(await fendGet(token, 'credentials', { location }), 404, 'NOT_FOUND');
      }
      expectError(await fendGet(token, 'credentials', { location: 'nope' }), 400, 'INVALID_ARGUMENT');
      expectError(await fendGet(token, 'credentials'), 400, 'INVALID_ARGUMENT');
    });

    it('should refuse a viewer (403) and an anonymous caller (401) on locations, credentials and connect', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const viewer = await createUser(api, t.admin.token, '_', 'viewer');
      const token = await signinUser(t.account.name, viewer);
      expectError(await fendGet(token, 'locations'), 403, 'FORBIDDEN');
      expectError(await fendGet(token, 'credentials', { location: gateway.id }), 403, 'FORBIDDEN');
      expectError(
        await fendPost(token, 'connect', connectBody(gateway.id, wireGuardKey())),
        403,
        'FORBIDDEN',
      );
      expectError(await request(api.url).get('/api/client/locations'), 401, 'UNAUTHORIZED');
      expectError(
        await request(api.url).post('/api/client/connect').send(connectBody(gateway.id, wireGuardKey())),
        401,
        'UNAUTHORIZED',
      );
      expect(clientPeers(fake)).toEqual([]);
      expect(await listSessions(api, t.admin.token, '_')).toEqual([]);
    });
  });

  describe('connect', () => {
    it("should put a client peer that may reach every device of the caller's subtree on the gateway before answering", async () => {
      const s = await tree();
      const clientKey = wireGuardKey();
      const from = s.fake.requests.length;
      const serial = s.fake.serial;

      const res = await fendPost(s.token, 'connect', connectBody(s.gateway.id, clientKey));
      expect(res.status).toBe(200);
      const info = res.body.info_wireguard;
      expect(res.body).toEqual({
        info_wireguard: {
          server_public_key: s.fake.publicKey,
          server_ipv4: SERVER_IPV4,
          server_port: 51820,
          tunnel_ipv4: expect.any(String),
          keepalive: DEFAULT_KEEPALIVE,
          allowed_ips: [s.t.account.vpnSubnet, s.child.vpnSubnet],
          dns: [],
          ping_interval: DEFAULT_PING_INTERVAL,
        },
      });
      expect(inCidr(info.tunnel_ipv4, CLIENT_POOL)).toBe(true);

      // Held by the gateway when the answer came: the account's and the child's devices, not the sibling's.
      const expected = clientPeer(info.tunnel_ipv4, s.t.account.id, clientKey, [s.own.key, s.inChild.key]);
      expect(sortedAllow(s.fake.peers.get(clientKey))).toEqual(expected);
      const [apply, ...rest] = s.fake.requests.slice(from);
      expect(rest).toEqual([]);
      expect(apply.reply).toEqual({ code: ResponseCodes.OK, serial: serial + 1 });
      expect(apply.apply?.upsert.map(sortedAllow)).toEqual([expected]);
      expect(apply.apply?.remove).toEqual([]);
      expect(s.fake.peers.get(s.inSibling.key)?.allow).toEqual([]);

      const sessions = await listSessions(api, s.t.admin.token, '_');
      expect(sessions).toEqual([
        {
          id: expect.any(String),
          kind: 'site',
          deviceId: null,
          gatewayId: s.gateway.id,
          userId: s.t.admin.id,
          apiKeyId: null,
          tunnelAddress: info.tunnel_ipv4,
          startedOn: expect.any(String),
          lastSeenOn: expect.any(String),
          endedOn: null,
          endReason: null,
          rxBytes: 0,
          txBytes: 0,
        },
      ]);
      expect((await listSessions(api, s.t.admin.token, '_', { kind: 'site' })).map((x) => x.id)).toEqual([
        sessions[0].id,
      ]);
      expect(await listSessions(api, s.t.admin.token, '_', { kind: 'device' })).toEqual([]);
      // Not the sibling's, nor the child's own audit trail.
      expect(await listSessions(api, s.sibling.admin.token, '_')).toEqual([]);
    });

    it("should list the client in the peers of the subtree's devices, also of one that connects later", async () => {
      const s = await tree();
      const clientKey = wireGuardKey();
      await fendPost(s.token, 'connect', connectBody(s.gateway.id, clientKey)).expect(200);

      const from = s.fake.requests.length;
      const later = await simulatedDevice(api, closer, s.t.admin.token, s.child, { scope: s.child.id });
      const outsider = await simulatedDevice(api, closer, s.sibling.admin.token, s.sibling.account);
      const upserts = s.fake.requests.slice(from).flatMap((r) => r.apply?.upsert ?? []);
      expect(upserts).toEqual([
        devicePeer(later.device, s.child.id, later.key, [clientKey]),
        devicePeer(outsider.device, s.sibling.account.id, outsider.key, []),
      ]);

      // Published in full (the gateway restarts): every device of the subtree lists the client.
      await s.fake.crash();
      await eventually(async () => {
        const res = await request(api.url)
          .get(`/v1/_/gateways/${s.gateway.id}`)
          .set(bearer(s.parent.admin.token))
          .expect(200);
        expect(res.body.connection).toBe('MISSING');
      });
      const fromSync = s.fake.requests.length;
      await s.fake.connect();
      const sync = await s.fake.waitForFullSync({ from: fromSync });
      const byKey = new Map((sync.sync?.peers ?? []).map((p) => [p.publicKey, sortedAllow(p)]));
      expect(byKey.get(s.own.key)?.allow).toEqual([clientKey]);
      expect(byKey.get(s.inChild.key)?.allow).toEqual([clientKey]);
      expect(byKey.get(later.key)?.allow).toEqual([clientKey]);
      expect(byKey.get(s.inSibling.key)?.allow).toEqual([]);
      expect(byKey.get(outsider.key)?.allow).toEqual([]);
      expect(byKey.get(clientKey)?.allow).toEqual([s.own.key, s.inChild.key, later.key].sort());
      expect(sync.sync?.addresses).toEqual(
        addressesFor([s.t.account.vpnSubnet, s.child.vpnSubnet, s.sibling.account.vpnSubnet]),
      );
    });

    it('should replace the session with the same identifiers on a new connect (replaced)', async () => {
      const { t, gateway, fake, token } = await tenantWithGateway();
      const first = wireGuardKey();
      const second = wireGuardKey();
      await fendPost(token, 'connect', connectBody(gateway.id, first)).expect(200);
      const [old] = await listSessions(api, t.admin.token, '_');

      await fendPost(token, 'connect', connectBody(gateway.id, second)).expect(200);
      // When the answer comes, the gateway holds the new key and no longer the old one.
      expect(clientPeers(fake).map((p) => p.publicKey)).toEqual([second]);
      const rows = await listSessions(api, t.admin.token, '_');
      expect(rows).toHaveLength(2);
      expect(await getSession(api, t.admin.token, '_', old.id)).toMatchObject({ endReason: 'replaced' });
      const [current] = await listSessions(api, t.admin.token, '_', { active: true });
      expect(current.id).not.toBe(old.id);

      // A client that restarts with the same key and identifiers gets a fresh session too.
      await fendPost(token, 'connect', connectBody(gateway.id, second)).expect(200);
      expect(clientPeers(fake).map((p) => p.publicKey)).toEqual([second]);
      expect(await getSession(api, t.admin.token, '_', current.id)).toMatchObject({ endReason: 'replaced' });
      expect(await listSessions(api, t.admin.token, '_', { active: true })).toHaveLength(1);
    });

    it('should refuse a key in use on the gateway from other identifiers with 409 ENTRY_EXISTS, leaving the session alone', async () => {
      const { t, gateway, fake, token } = await tenantWithGateway();
      const device = await simulatedDevice(api, closer, t.admin.token, t.account);
      const key = wireGuardKey();
      await fendPost(token, 'connect', connectBody(gateway.id, key)).expect(200);
      const [session] = await listSessions(api, t.admin.token, '_');
      const held = fake.peers.get(key);
      const from = fake.requests.length;

      const again = await fendPost(token, 'connect', connectBody(gateway.id, key, { session_id: 's2' }));
      expectError(again, 409, 'ENTRY_EXISTS');
      const deviceKey = await fendPost(
        token,
        'connect',
        connectBody(gateway.id, device.key, { installation_id: 'laptop-2' }),
      );
      expectError(deviceKey, 409, 'ENTRY_EXISTS');

      expect(fake.requests.slice(from)).toEqual([]);
      expect(fake.peers.get(key)).toEqual(held);
      const rows = await listSessions(api, t.admin.token, '_');
      expect(rows.map((r: SessionBody) => [r.id, r.endedOn])).toEqual([[session.id, null]]);
      await fendPost(token, 'ping', { installation_id: 'laptop-1', session_id: 's1' }).expect(204);
    });

    it('should answer 500 TUNNEL_ERROR for an offline location, opening nothing', async () => {
      const { t, gateway, fake, token } = await tenantWithGateway();
      await fake.disconnect();
      await eventually(async () => {
        const res = await fendGet(token, 'locations').expect(200);
        expect(res.body).toEqual([{ id: gateway.id, name: gateway.name, labels: ['offline'] }]);
      });
      const res = await fendPost(token, 'connect', connectBody(gateway.id, wireGuardKey()));
      expectError(res, 500, 'TUNNEL_ERROR');
      expect(res.body.details).toContain(gateway.name);
      expect(await listSessions(api, t.admin.token, '_')).toEqual([]);
    });

    it('should answer 500 TUNNEL_ERROR when the gateway does not take the tunnel in time, ending the session (gateway_error)', async () => {
      const { t, gateway, fake, token } = await tenantWithGateway();
      const key = wireGuardKey();
      fake.hold();
      const res = await fendPost(token, 'connect', connectBody(gateway.id, key));
      expectError(res, 500, 'TUNNEL_ERROR');
      expect(res.body.details).toContain(gateway.name);
      const rows = await listSessions(api, t.admin.token, '_');
      expect(rows.map((r) => [r.kind, r.endReason])).toEqual([['site', 'gateway_error']]);
      expect(rows[0].endedOn).not.toBeNull();
      expectError(
        await fendPost(token, 'ping', { installation_id: 'laptop-1', session_id: 's1' }),
        404,
        'NOT_FOUND',
      );
      fake.release();
      await eventually(() => {
        expect(fake.peers.has(key)).toBe(false);
        expect(fake.requests.at(-1)?.reply?.code).toBe(ResponseCodes.OK);
      }, 20_000);
    });

    it("should answer 404 for a location that is not offered: unknown, IPv6 only, another tenant's", async () => {
      const { t, token } = await tenantWithGateway();
      const { gateway: v6, fake: v6Fake } = await startGateway(api, t.admin.token, '_', {
        endpoint: '[fd00::1]:51820',
      });
      closer.add(v6Fake);
      const other = await tenantWithGateway();
      for (const location of [randomUUID(), v6.id, other.gateway.id]) {
        expectError(
          await fendPost(token, 'connect', connectBody(location, wireGuardKey())),
          404,
          'NOT_FOUND',
        );
      }
      expect(await listSessions(api, t.admin.token, '_')).toEqual([]);
      expect(clientPeers(v6Fake)).toEqual([]);
      expect(clientPeers(other.fake)).toEqual([]);
    });

    it.each([
      ['another type', (b: ReturnType<typeof connectBody>) => ({ ...b, type: 'openvpn' })],
      [
        'a malformed key',
        (b: ReturnType<typeof connectBody>) => ({ ...b, info_wireguard: { public_key: 'x' } }),
      ],
      ['no info_wireguard', (b: ReturnType<typeof connectBody>) => ({ ...b, info_wireguard: undefined })],
      ['no identifiers', (b: ReturnType<typeof connectBody>) => ({ ...b, identifiers: undefined })],
      [
        'an installation_id with a space',
        (b: ReturnType<typeof connectBody>) => ({
          ...b,
          identifiers: { ...b.identifiers, installation_id: 'a b' },
        }),
      ],
      [
        'a session_id of 129 characters',
        (b: ReturnType<typeof connectBody>) => ({
          ...b,
          identifiers: { ...b.identifiers, session_id: 'x'.repeat(129) },
        }),
      ],
      ['a location that is no UUID', (b: ReturnType<typeof connectBody>) => ({ ...b, location: 'hub-1' })],
      ['an extra field', (b: ReturnType<typeof connectBody>) => ({ ...b, allowed_ips: ['0.0.0.0/0'] })],
      [
        'an extra nested field',
        (b: ReturnType<typeof connectBody>) => ({ ...b, info_wireguard: { ...b.info_wireguard, psk: 'x' } }),
      ],
    ])('should refuse a connect with %s with 400 INVALID_ARGUMENT', async (_what, change) => {
      const { t, gateway, fake, token } = await tenantWithGateway();
      const from = fake.requests.length;
      const res = await fendPost(token, 'connect', change(connectBody(gateway.id, wireGuardKey())));
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(fake.requests.slice(from)).toEqual([]);
      expect(await listSessions(api, t.admin.token, '_')).toEqual([]);
    });

    it('should let an operator connect', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const operator = await createUser(api, t.admin.token, '_', 'operator');
      const token = await signinUser(t.account.name, operator);
      const key = wireGuardKey();
      await fendPost(token, 'connect', connectBody(gateway.id, key)).expect(200);
      expect(fake.peers.has(key)).toBe(true);
      expect((await listSessions(api, t.admin.token, '_'))[0]).toMatchObject({ userId: operator.id });
    });
  });

  describe('ping and disconnect', () => {
    const ids = { installation_id: 'laptop-1', session_id: 's1' };

    it('should keep the session alive with a ping (204), and answer 404 NOT_FOUND for one that is not active', async () => {
      const { t, gateway, token } = await tenantWithGateway();
      await fendPost(token, 'connect', connectBody(gateway.id, wireGuardKey())).expect(200);
      const [before] = await listSessions(api, t.admin.token, '_');

      const res = await fendPost(token, 'ping', ids);
      expect(res.status).toBe(204);
      expect(res.text).toBe('');
      const after = await getSession(api, t.admin.token, '_', before.id);
      expect(new Date(after.lastSeenOn).getTime()).toBeGreaterThan(new Date(before.lastSeenOn).getTime());

      for (const unknown of [
        { installation_id: 'laptop-1', session_id: 's2' },
        { installation_id: 'laptop-2', session_id: 's1' },
      ]) {
        expectError(await fendPost(token, 'ping', unknown), 404, 'NOT_FOUND');
      }
      expectError(
        await fendPost(token, 'ping', { installation_id: 'laptop 1', session_id: 's1' }),
        400,
        'INVALID_ARGUMENT',
      );
      expectError(await fendPost(token, 'ping', { installation_id: 'laptop-1' }), 400, 'INVALID_ARGUMENT');

      await fendPost(token, 'disconnect', ids).expect(204);
      expectError(await fendPost(token, 'ping', ids), 404, 'NOT_FOUND');
    });

    it('should keep the session for the user, not the token: a refreshed token pings it', async () => {
      const t = await createTenant(api, rootToken);
      const { gateway, fake } = await startGateway(api, t.admin.token, '_', { endpoint: ENDPOINT });
      closer.add(fake);
      const signed = await signin(
        signinBody(t.account.name, 'password', `${t.admin.username}:${t.admin.password}`),
      ).expect(200);
      const first = signed.body.access_token as string;
      await fendPost(first, 'connect', connectBody(gateway.id, wireGuardKey())).expect(200);

      const refreshed = await request(api.url)
        .post('/v1/authentication/refresh')
        .send({ tokenId: first, refreshToken: signed.body.refresh_token })
        .expect(200);
      expectError(await fendPost(first, 'ping', ids), 401, 'UNAUTHORIZED');
      await fendPost(refreshed.body.tokenId, 'ping', ids).expect(204);
      await fendPost(refreshed.body.tokenId, 'disconnect', ids).expect(204);
      await eventually(() => expect(clientPeers(fake)).toEqual([]));
    });

    it('should end the session on disconnect (204, closed) and take its peer off the gateway', async () => {
      const { t, gateway, fake, token } = await tenantWithGateway();
      const key = wireGuardKey();
      await fendPost(token, 'connect', connectBody(gateway.id, key)).expect(200);
      const [session] = await listSessions(api, t.admin.token, '_');
      const from = fake.requests.length;

      const res = await fendPost(token, 'disconnect', { ...ids, location: gateway.id });
      expect(res.status).toBe(204);
      const removal = await fake.waitForRequest(
        (r) => r.apply?.remove.includes(key) === true && r.reply?.code === ResponseCodes.OK,
        { from },
      );
      expect(removal.apply?.upsert).toEqual([]);
      expect(fake.peers.has(key)).toBe(false);
      expect(await getSession(api, t.admin.token, '_', session.id)).toMatchObject({
        endedOn: expect.any(String),
        endReason: 'closed',
      });
      expectError(await fendPost(token, 'disconnect', ids), 404, 'NOT_FOUND');
    });

    it('should not let another user ping or disconnect a session with the same identifiers', async () => {
      const { t, gateway, fake, token } = await tenantWithGateway();
      const key = wireGuardKey();
      await fendPost(token, 'connect', connectBody(gateway.id, key)).expect(200);
      const [session] = await listSessions(api, t.admin.token, '_');
      const colleague = await signinUser(
        t.account.name,
        await createUser(api, t.admin.token, '_', 'operator'),
      );
      const stranger = await tenantWithGateway();

      for (const other of [colleague, stranger.token]) {
        expectError(await fendPost(other, 'ping', ids), 404, 'NOT_FOUND');
        expectError(await fendPost(other, 'disconnect', ids), 404, 'NOT_FOUND');
      }
      expect(await getSession(api, t.admin.token, '_', session.id)).toMatchObject({ endedOn: null });
      expect(fake.peers.has(key)).toBe(true);
    });
  });
});

describe('FendVPN client API with PUBLIC_URL and a client pool of one address', () => {
  const PUBLIC_URL = 'https://vpn-cloud.example.test';
  let api: TestApi;
  let rootToken: string;
  const closer = new Closer();

  beforeAll(async () => {
    api = await startTestApi({ PUBLIC_URL: `${PUBLIC_URL}/`, VPN_CLIENT_POOL: '10.208.0.0/30' });
    rootToken = await login(api);
  });

  afterAll(async () => {
    await closer.closeAll();
    await api?.stop();
  });

  it('should name PUBLIC_URL in the discovery addresses and the location credentials', async () => {
    const t = await createTenant(api, rootToken);
    const { gateway, fake } = await startGateway(api, t.admin.token, '_', { endpoint: ENDPOINT });
    closer.add(fake);
    const res = await request(api.url)
      .post('/api/client/signin')
      .send(signinBody(t.account.name, 'password', `${t.admin.username}:${t.admin.password}`))
      .expect(200);
    expect(res.body.discovery_addresses).toEqual([PUBLIC_URL]);
    const credentials = await request(api.url)
      .get('/api/client/credentials')
      .query({ location: gateway.id })
      .set(bearer(res.body.access_token))
      .expect(200);
    expect(credentials.body).toEqual([{ id: gateway.id, connection_addresses: [PUBLIC_URL] }]);
  });

  it('should answer 507 INSUFFICIENT_STORAGE to a connect once the client pool is full', async () => {
    const t = await createTenant(api, rootToken);
    const { gateway, fake } = await startGateway(api, t.admin.token, '_', { endpoint: ENDPOINT });
    closer.add(fake);
    const signed = await request(api.url)
      .post('/api/client/signin')
      .send(signinBody(t.account.name, 'password', `${t.admin.username}:${t.admin.password}`))
      .expect(200);
    const connect = (sessionId: string) =>
      request(api.url)
        .post('/api/client/connect')
        .set(bearer(signed.body.access_token))
        .send(connectBody(gateway.id, wireGuardKey(), { session_id: sessionId }));

    const first = await connect('s1').expect(200);
    expect(first.body.info_wireguard.tunnel_ipv4).toBe('10.208.0.2');
    const from = fake.requests.length;
    expectError(await connect('s2'), 507, 'INSUFFICIENT_STORAGE');
    expect(fake.requests.slice(from)).toEqual([]);
    expect(clientPeers(fake)).toHaveLength(1);
    expect(await listSessions(api, t.admin.token, '_')).toHaveLength(1);
    // Replacing the session with the same identifiers reuses its address.
    const replaced = await connect('s1').expect(200);
    expect(replaced.body.info_wireguard.tunnel_ipv4).toBe('10.208.0.2');
  });
});
