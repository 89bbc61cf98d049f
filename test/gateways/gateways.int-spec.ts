import { randomUUID } from 'node:crypto';
import { connectAsync } from 'mqtt';
import request from 'supertest';
import { eventually } from '../support/eventually';
import { createDevice, getDevice } from '../support/device-factories';
import { createAccount, createTenant, createUser, type CreatedUser, type Tenant } from '../support/factories';
import { FakeGateway } from '../support/fake-gateway';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';
import {
  Closer,
  createGateway,
  getGateway,
  issueGatewayCredentials,
  SimDevice,
  startGateway,
  uniqueGatewayName,
  type GatewayBody,
} from './gateway-fixtures';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

// The credential tests connect with the issued password, so the broker's own auth must apply.
describe('gateway registry (REST: /v1/{scopeId}/gateways)', () => {
  let api: TestApi;
  let rootToken: string;
  const closer = new Closer();

  beforeAll(async () => {
    api = await startTestApi({}, { embeddedBroker: true });
    rootToken = await login(api);
  });

  afterEach(async () => {
    await closer.closeAll();
  });

  afterAll(async () => {
    await closer.closeAll();
    await api?.stop();
  });

  const as = (token: string) => ({
    get: (path: string) => request(api.url).get(path).set(bearer(token)),
    put: (path: string, body: object) => request(api.url).put(path).set(bearer(token)).send(body),
    post: (path: string, body: object = {}) => request(api.url).post(path).set(bearer(token)).send(body),
    patch: (path: string, body: object) => request(api.url).patch(path).set(bearer(token)).send(body),
    delete: (path: string) => request(api.url).delete(path).set(bearer(token)),
  });

  describe('CRUD', () => {
    it('should create a gateway with no key and NEVER_CONNECTED until its BIRTH', async () => {
      const t = await createTenant(api, rootToken);
      const name = uniqueGatewayName();
      const res = await as(t.admin.token)
        .post('/v1/_/gateways', { name, endpoint: 'vpn.example.com:51820', description: 'Hub EU 1' })
        .expect(201);
      expect(res.body).toEqual({
        id: expect.stringMatching(UUID),
        scopeId: t.account.id,
        name,
        endpoint: 'vpn.example.com:51820',
        description: 'Hub EU 1',
        publicKey: null,
        listenPort: null,
        connection: 'NEVER_CONNECTED',
        peers: 0,
        lastSeenOn: null,
        mqttUsername: null,
        credentialsIssuedOn: null,
        createdOn: expect.stringMatching(ISO_DATE),
        createdBy: t.admin.id,
        modifiedOn: expect.stringMatching(ISO_DATE),
        modifiedBy: t.admin.id,
        optlock: expect.any(Number),
      });
    });

    it('should default the description to an empty string and accept IPv4 and [IPv6] endpoints', async () => {
      const t = await createTenant(api, rootToken);
      for (const endpoint of ['203.0.113.7:51820', '[2001:db8::1]:443', 'hub.example.com:1']) {
        const res = await as(t.admin.token)
          .post('/v1/_/gateways', { name: uniqueGatewayName(), endpoint })
          .expect(201);
        expect(res.body).toMatchObject({ endpoint, description: '' });
      }
    });

    it('should read a gateway by id in its own scope, with _ and with the account id', async () => {
      const t = await createTenant(api, rootToken);
      const gw = await createGateway(api, t.admin.token);
      const byUnderscore = await as(t.admin.token).get(`/v1/_/gateways/${gw.id}`).expect(200);
      const byId = await as(t.admin.token).get(`/v1/${t.account.id}/gateways/${gw.id}`).expect(200);
      expect(byUnderscore.body).toEqual(gw);
      expect(byId.body).toEqual(gw);
    });

    it('should list the gateways of the account ordered by name, and filter by name and connection', async () => {
      const t = await createTenant(api, rootToken);
      const b = await createGateway(api, t.admin.token, '_', { name: `b-${uniqueGatewayName()}` });
      const a = await createGateway(api, t.admin.token, '_', { name: `a-${uniqueGatewayName()}` });
      const all = await as(t.admin.token).get('/v1/_/gateways?askTotalCount=true').expect(200);
      expect(all.body).toEqual({ items: [a, b], size: 2, limitExceeded: false, totalCount: 2 });

      const byName = await as(t.admin.token).get(`/v1/_/gateways?name=${b.name}`).expect(200);
      expect(byName.body.items).toEqual([b]);

      const paged = await as(t.admin.token).get('/v1/_/gateways?limit=1').expect(200);
      expect(paged.body).toMatchObject({ items: [a], size: 1, limitExceeded: true });

      const never = await as(t.admin.token).get('/v1/_/gateways?connection=NEVER_CONNECTED').expect(200);
      expect(never.body.size).toBe(2);
      const connected = await as(t.admin.token).get('/v1/_/gateways?connection=CONNECTED').expect(200);
      expect(connected.body).toMatchObject({ items: [], size: 0 });
      expectError(await as(t.admin.token).get('/v1/_/gateways?connection=ONLINE'), 400, 'INVALID_ARGUMENT');
    });

    it('should change the endpoint and description with the current optlock, and refuse a stale one with 409', async () => {
      const t = await createTenant(api, rootToken);
      const gw = await createGateway(api, t.admin.token, '_', { description: 'before' });
      const patched = await as(t.admin.token)
        .patch(`/v1/_/gateways/${gw.id}`, {
          endpoint: 'hub2.example.com:4500',
          description: 'after',
          optlock: gw.optlock,
        })
        .expect(200);
      expect(patched.body).toMatchObject({
        id: gw.id,
        name: gw.name,
        endpoint: 'hub2.example.com:4500',
        description: 'after',
        optlock: gw.optlock + 1,
        modifiedBy: t.admin.id,
      });
      expect(await getGateway(api, t.admin.token, '_', gw.id)).toEqual(patched.body);

      const stale = await as(t.admin.token).patch(`/v1/_/gateways/${gw.id}`, {
        description: 'lost update',
        optlock: gw.optlock,
      });
      expectError(stale, 409, 'OPTLOCK_CONFLICT');
      expect(await getGateway(api, t.admin.token, '_', gw.id)).toEqual(patched.body);

      // Only the endpoint and description can change; the name is the gateway's MQTT identity.
      expectError(
        await as(t.admin.token).patch(`/v1/_/gateways/${gw.id}`, {
          name: 'renamed',
          optlock: patched.body.optlock,
        }),
        400,
        'INVALID_ARGUMENT',
      );
      expectError(
        await as(t.admin.token).patch(`/v1/_/gateways/${gw.id}`, { description: 'no optlock' }),
        400,
        'INVALID_ARGUMENT',
      );
    });

    it('should delete a gateway, then answer 404 for it', async () => {
      const t = await createTenant(api, rootToken);
      const gw = await createGateway(api, t.admin.token);
      await as(t.admin.token).delete(`/v1/_/gateways/${gw.id}`).expect(204);
      expectError(await as(t.admin.token).get(`/v1/_/gateways/${gw.id}`), 404, 'NOT_FOUND');
      expectError(await as(t.admin.token).delete(`/v1/_/gateways/${gw.id}`), 404, 'NOT_FOUND');
      expectError(
        await as(t.admin.token).patch(`/v1/_/gateways/${gw.id}`, { description: 'x', optlock: gw.optlock }),
        404,
        'NOT_FOUND',
      );
      expectError(await as(t.admin.token).post(`/v1/_/gateways/${gw.id}/credentials`), 404, 'NOT_FOUND');
      expect((await as(t.admin.token).get('/v1/_/gateways').expect(200)).body.size).toBe(0);
    });

    it('should refuse to delete an account that holds a gateway (409, naming the gateway) and keep it', async () => {
      const t = await createTenant(api, rootToken);
      const child = await createAccount(api, t.admin.token);
      const gw = await createGateway(api, t.admin.token, child.id);
      const res = await as(t.admin.token).delete(`/v1/_/accounts/${child.id}`);
      expectError(res, 409, 'CONFLICT');
      expect(res.body.details).toMatch(/gateway/i);
      expect(await getGateway(api, t.admin.token, child.id, gw.id)).toEqual(gw);
      await as(t.admin.token).delete(`/v1/${child.id}/gateways/${gw.id}`).expect(204);
      await as(t.admin.token).delete(`/v1/_/accounts/${child.id}`).expect(204);
    });

    it('should answer 404 for an unknown gateway id and 400 for a malformed one', async () => {
      const t = await createTenant(api, rootToken);
      expectError(await as(t.admin.token).get(`/v1/_/gateways/${randomUUID()}`), 404, 'NOT_FOUND');
      expectError(await as(t.admin.token).get('/v1/_/gateways/not-a-uuid'), 400, 'INVALID_ARGUMENT');
      expectError(await as(t.admin.token).delete('/v1/_/gateways/not-a-uuid'), 400, 'INVALID_ARGUMENT');
    });
  });

  describe('validation', () => {
    let t: Tenant;

    beforeAll(async () => {
      t = await createTenant(api, rootToken);
    });

    it.each([
      ['an endpoint without a port', { endpoint: 'vpn.example.com' }],
      ['an endpoint with port 0', { endpoint: 'vpn.example.com:0' }],
      ['an endpoint with a port above 65535', { endpoint: 'vpn.example.com:65536' }],
      ['an endpoint with a path', { endpoint: 'vpn.example.com:51820/x' }],
      ['an endpoint with a scheme', { endpoint: 'udp://vpn.example.com:51820' }],
      ['an unbracketed IPv6 endpoint', { endpoint: '2001:db8::1:51820' }],
      ['a missing endpoint', { endpoint: undefined }],
      ['a name with a slash', { name: 'hub/eu' }],
      ['a name with a wildcard', { name: 'hub+' }],
      ['a name with #', { name: 'hub#1' }],
      ['an empty name', { name: '' }],
      ['a name of 65 characters', { name: 'g'.repeat(65) }],
      ['a missing name', { name: undefined }],
      ['a description of 1025 characters', { description: 'd'.repeat(1025) }],
      ['an unknown field', { publicKey: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=' }],
      ['another unknown field', { color: 'blue' }],
    ])('should refuse to create a gateway with %s (400, documented error body)', async (_what, change) => {
      const body: Record<string, unknown> = {
        name: uniqueGatewayName(),
        endpoint: 'vpn.example.com:51820',
        ...change,
      };
      for (const key of Object.keys(body)) if (body[key] === undefined) delete body[key];
      const res = await as(t.admin.token).post('/v1/_/gateways', body);
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(res.body.details.length).toBeGreaterThan(0);
      expect((await as(t.admin.token).get('/v1/_/gateways').expect(200)).body.size).toBe(0);
    });

    it('should name the offending field in the error details', async () => {
      const res = await as(t.admin.token).post('/v1/_/gateways', {
        name: uniqueGatewayName(),
        endpoint: 'vpn.example.com',
      });
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(res.body.details).toContain('endpoint');
    });

    it('should refuse a PATCH with an invalid endpoint or an unknown field', async () => {
      const gw = await createGateway(api, t.admin.token);
      expectError(
        await as(t.admin.token).patch(`/v1/_/gateways/${gw.id}`, { endpoint: 'nope', optlock: gw.optlock }),
        400,
        'INVALID_ARGUMENT',
      );
      expectError(
        await as(t.admin.token).patch(`/v1/_/gateways/${gw.id}`, { listenPort: 1, optlock: gw.optlock }),
        400,
        'INVALID_ARGUMENT',
      );
      expect(await getGateway(api, t.admin.token, '_', gw.id)).toEqual(gw);
      await as(t.admin.token).delete(`/v1/_/gateways/${gw.id}`).expect(204);
    });
  });

  describe('name namespace', () => {
    it('should refuse a gateway named like a device of the account with 409 ENTRY_EXISTS', async () => {
      const t = await createTenant(api, rootToken);
      const device = await createDevice(api, t.admin.token);
      const res = await as(t.admin.token).post('/v1/_/gateways', {
        name: device.clientId,
        endpoint: 'vpn.example.com:51820',
      });
      expectError(res, 409, 'ENTRY_EXISTS');
      expect((await as(t.admin.token).get('/v1/_/gateways').expect(200)).body.size).toBe(0);
    });

    it('should refuse a device named like a gateway of the account with 409 ENTRY_EXISTS', async () => {
      const t = await createTenant(api, rootToken);
      const gw = await createGateway(api, t.admin.token);
      const res = await as(t.admin.token).post('/v1/_/devices', { clientId: gw.name });
      expectError(res, 409, 'ENTRY_EXISTS');
      const devices = await as(t.admin.token).get(`/v1/_/devices?clientId=${gw.name}`).expect(200);
      expect(devices.body.size).toBe(0);
    });

    it('should refuse a second gateway with the same name in the account with 409 ENTRY_EXISTS', async () => {
      const t = await createTenant(api, rootToken);
      const gw = await createGateway(api, t.admin.token);
      expectError(
        await as(t.admin.token).post('/v1/_/gateways', { name: gw.name, endpoint: 'other.example.com:1' }),
        409,
        'ENTRY_EXISTS',
      );
    });

    it('should allow the same gateway name in another account', async () => {
      const a = await createTenant(api, rootToken);
      const b = await createTenant(api, rootToken);
      const gw = await createGateway(api, a.admin.token);
      await as(b.admin.token)
        .post('/v1/_/gateways', { name: gw.name, endpoint: 'vpn.example.com:51820' })
        .expect(201);
    });
  });

  describe('credentials', () => {
    it('should issue credentials once (username {account}:{name}) and keep only their digest', async () => {
      const t = await createTenant(api, rootToken);
      const gw = await createGateway(api, t.admin.token);
      const res = await as(t.admin.token).post(`/v1/_/gateways/${gw.id}/credentials`).expect(201);
      expect(res.body).toEqual({
        username: `${t.account.name}:${gw.name}`,
        password: expect.any(String),
        clientId: gw.name,
        account: t.account.name,
      });
      expect(res.body.password.length).toBeGreaterThanOrEqual(32);

      const read = await as(t.admin.token).get(`/v1/_/gateways/${gw.id}`).expect(200);
      expect(read.body).toMatchObject({
        mqttUsername: `${t.account.name}:${gw.name}`,
        credentialsIssuedOn: expect.stringMatching(ISO_DATE),
      });
      expect(JSON.stringify(read.body)).not.toContain(res.body.password);
      const listed = await as(t.admin.token).get('/v1/_/gateways').expect(200);
      expect(JSON.stringify(listed.body)).not.toContain(res.body.password);
    });

    it('should let the gateway connect with its credentials, and only those of the latest issue', async () => {
      const t = await createTenant(api, rootToken);
      const gw = await createGateway(api, t.admin.token);
      const first = await issueGatewayCredentials(api, t.admin.token, '_', gw.id);
      const fake = closer.add(await FakeGateway.start(api.mqttUrl, first));
      await fake.waitForFullSync();

      const second = await issueGatewayCredentials(api, t.admin.token, '_', gw.id);
      expect(second.password).not.toBe(first.password);
      // Rotating closes the session that used the old password; the old password no longer works.
      await eventually(() => expect(fake.connected).toBe(false));
      await expect(FakeGateway.start(api.mqttUrl, first)).rejects.toThrow(/Bad username or password/);
      closer.add(await FakeGateway.start(api.mqttUrl, second));
    });

    it('should refuse a connection with the right password but another client id', async () => {
      const t = await createTenant(api, rootToken);
      const gw = await createGateway(api, t.admin.token);
      const creds = await issueGatewayCredentials(api, t.admin.token, '_', gw.id);
      await expect(
        connectAsync(api.mqttUrl, {
          clientId: `${gw.name}-x`,
          username: creds.username,
          password: creds.password,
          reconnectPeriod: 0,
          connectTimeout: 5000,
        }).then((c) => c.endAsync(true)),
      ).rejects.toThrow(/Bad username or password/);
    });
  });

  describe('connection', () => {
    it('should show the BIRTH key, port and CONNECTED, then DISCONNECTED after a DC', async () => {
      const t = await createTenant(api, rootToken);
      const gw = await createGateway(api, t.admin.token);
      const creds = await issueGatewayCredentials(api, t.admin.token, '_', gw.id);
      const fake = closer.add(await FakeGateway.start(api.mqttUrl, creds, { listenPort: 51999 }));
      await eventually(async () =>
        expect(await getGateway(api, t.admin.token, '_', gw.id)).toMatchObject({
          publicKey: fake.publicKey,
          listenPort: 51999,
          connection: 'CONNECTED',
          lastSeenOn: expect.stringMatching(ISO_DATE),
        }),
      );
      const connected = await as(t.admin.token).get('/v1/_/gateways?connection=CONNECTED').expect(200);
      expect((connected.body.items as GatewayBody[]).map((g) => g.id)).toEqual([gw.id]);

      await fake.disconnect();
      await eventually(async () =>
        expect(await getGateway(api, t.admin.token, '_', gw.id)).toMatchObject({
          connection: 'DISCONNECTED',
          // The key stays known: devices' profiles keep naming it while the gateway is away.
          publicKey: fake.publicKey,
          listenPort: 51999,
        }),
      );
    });

    it('should show MISSING when the gateway drops off without a DC (LWT)', async () => {
      const t = await createTenant(api, rootToken);
      const { gateway, fake } = await startGateway(api, t.admin.token);
      closer.add(fake);
      await fake.crash();
      await eventually(async () =>
        expect((await getGateway(api, t.admin.token, '_', gateway.id)).connection).toBe('MISSING'),
      );
    });

    it('should refuse to delete a gateway that carries a peer (409), and delete it once the peer is gone', async () => {
      const t = await createTenant(api, rootToken);
      const { gateway, fake } = await startGateway(api, t.admin.token);
      closer.add(fake);
      const device = await createDevice(api, t.admin.token);
      const sim = closer.add(await SimDevice.start(api, t.admin.token, '_', device, t.account.name));
      await as(t.admin.token).post(`/v1/_/devices/${device.id}/vpn/_connect?timeout=10000`).expect(200);
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(1);

      const refused = await as(t.admin.token).delete(`/v1/_/gateways/${gateway.id}`);
      expectError(refused, 409, 'CONFLICT');
      expect(refused.body.details).toMatch(/1 peer/);
      expect(await getGateway(api, t.admin.token, '_', gateway.id)).toMatchObject({ peers: 1 });
      expect(fake.peers.has(sim.publicKey as string)).toBe(true);

      await as(t.admin.token).post(`/v1/_/devices/${device.id}/vpn/_disconnect?timeout=10000`).expect(200);
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(0);
      await as(t.admin.token).delete(`/v1/_/gateways/${gateway.id}`).expect(204);
      // Its session is closed with it.
      await eventually(() => expect(fake.connected).toBe(false));
      expect((await getDevice(api, t.admin.token, '_', device.id)).connectionStatus).toBe('CONNECTED');
    });
  });

  describe('tenant isolation', () => {
    let a: Tenant;
    let b: Tenant;
    let gwA: GatewayBody;

    beforeAll(async () => {
      a = await createTenant(api, rootToken);
      b = await createTenant(api, rootToken);
      gwA = await createGateway(api, a.admin.token, '_', { description: 'owned by A' });
    });

    afterEach(async () => {
      // Whatever B tried, A's gateway is unchanged and has no credentials.
      expect(await getGateway(api, a.admin.token, '_', gwA.id)).toEqual(gwA);
    });

    it("should answer 403 when B lists, reads, changes, deletes or issues credentials in A's scope", async () => {
      const t = as(b.admin.token);
      const scope = `/v1/${a.account.id}/gateways`;
      expectError(await t.get(scope), 403, 'FORBIDDEN');
      expectError(await t.get(`${scope}/${gwA.id}`), 403, 'FORBIDDEN');
      expectError(
        await t.patch(`${scope}/${gwA.id}`, { description: 'x', optlock: gwA.optlock }),
        403,
        'FORBIDDEN',
      );
      expectError(await t.delete(`${scope}/${gwA.id}`), 403, 'FORBIDDEN');
      expectError(await t.post(`${scope}/${gwA.id}/credentials`), 403, 'FORBIDDEN');
      expectError(
        await t.post(scope, { name: uniqueGatewayName(), endpoint: 'evil.example.com:1' }),
        403,
        'FORBIDDEN',
      );
      expect((await as(a.admin.token).get('/v1/_/gateways').expect(200)).body.items).toEqual([gwA]);
    });

    it("should answer 404 when B addresses A's gateway by id in its own scope", async () => {
      const t = as(b.admin.token);
      expectError(await t.get(`/v1/_/gateways/${gwA.id}`), 404, 'NOT_FOUND');
      expectError(await t.get(`/v1/${b.account.id}/gateways/${gwA.id}`), 404, 'NOT_FOUND');
      expectError(
        await t.patch(`/v1/_/gateways/${gwA.id}`, { description: 'x', optlock: gwA.optlock }),
        404,
        'NOT_FOUND',
      );
      expectError(await t.delete(`/v1/_/gateways/${gwA.id}`), 404, 'NOT_FOUND');
      expectError(await t.post(`/v1/_/gateways/${gwA.id}/credentials`), 404, 'NOT_FOUND');
      expect((await t.get('/v1/_/gateways').expect(200)).body.items).toEqual([]);
    });

    it('should answer the same 403 for an unknown scope id as for a foreign one', async () => {
      const foreign = await as(b.admin.token).get(`/v1/${a.account.id}/gateways`);
      const unknown = await as(b.admin.token).get(`/v1/${randomUUID()}/gateways`);
      expectError(unknown, 403, 'FORBIDDEN');
      expect(unknown.body).toEqual(foreign.body);
    });

    it("should not let B pin a device to A's gateway, on create or on update (400)", async () => {
      const t = as(b.admin.token);
      const created = await t.post('/v1/_/devices', {
        clientId: `dev-${randomUUID().slice(0, 8)}`,
        gatewayId: gwA.id,
      });
      expectError(created, 400, 'INVALID_ARGUMENT');
      const device = await createDevice(api, b.admin.token);
      const updated = await t.put(`/v1/_/devices/${device.id}`, {
        gatewayId: gwA.id,
        optlock: device.optlock,
      });
      expectError(updated, 400, 'INVALID_ARGUMENT');
      expect(await getDevice(api, b.admin.token, '_', device.id)).toMatchObject({ gatewayId: null });
    });

    it("should let a child account's device pin its parent's gateway, but not the other way round", async () => {
      const child = await createAccount(api, a.admin.token);
      const childGw = await createGateway(api, a.admin.token, child.id);
      const childDevice = await as(a.admin.token)
        .post(`/v1/${child.id}/devices`, { clientId: `dev-${randomUUID().slice(0, 8)}`, gatewayId: gwA.id })
        .expect(201);
      expect(childDevice.body.gatewayId).toBe(gwA.id);
      expectError(
        await as(a.admin.token).post('/v1/_/devices', {
          clientId: `dev-${randomUUID().slice(0, 8)}`,
          gatewayId: childGw.id,
        }),
        400,
        'INVALID_ARGUMENT',
      );
      await as(a.admin.token).delete(`/v1/${child.id}/devices/${childDevice.body.id}`).expect(204);
      await as(a.admin.token).delete(`/v1/${child.id}/gateways/${childGw.id}`).expect(204);
    });

    it("should not let a child account's admin reach its parent's gateway", async () => {
      const childRes = await as(a.admin.token).post('/v1/_/accounts', {
        name: `child-${randomUUID().slice(0, 8)}`,
      });
      expect(childRes.status).toBe(201);
      const childAdmin = await createUser(api, a.admin.token, childRes.body.id, 'admin');
      const t = as(childAdmin.token);
      expectError(await t.get(`/v1/${a.account.id}/gateways`), 403, 'FORBIDDEN');
      expectError(await t.get(`/v1/_/gateways/${gwA.id}`), 404, 'NOT_FOUND');
      expectError(await t.delete(`/v1/_/gateways/${gwA.id}`), 404, 'NOT_FOUND');
    });

    it("should let the parent account's admin manage a child account's gateways", async () => {
      const childRes = await as(a.admin.token).post('/v1/_/accounts', {
        name: `child-${randomUUID().slice(0, 8)}`,
      });
      const child = childRes.body.id as string;
      const gw = await createGateway(api, a.admin.token, child);
      expect(gw.scopeId).toBe(child);
      expect((await as(a.admin.token).get(`/v1/${child}/gateways`).expect(200)).body.items).toEqual([gw]);
      // Not listed in the parent's own scope: the list is per account.
      expect((await as(a.admin.token).get('/v1/_/gateways').expect(200)).body.items).toEqual([gwA]);
      await as(a.admin.token).delete(`/v1/${child}/gateways/${gw.id}`).expect(204);
    });
  });

  describe('roles', () => {
    let t: Tenant;
    let viewer: CreatedUser;
    let operator: CreatedUser;

    beforeAll(async () => {
      t = await createTenant(api, rootToken);
      viewer = await createUser(api, t.admin.token, '_', 'viewer');
      operator = await createUser(api, t.admin.token, '_', 'operator');
    });

    it.each([
      ['a viewer', 'viewer'],
      ['an operator', 'operator'],
    ] as const)('should let %s list and read gateways', async (_who, role) => {
      const user = role === 'viewer' ? viewer : operator;
      const gw = await createGateway(api, t.admin.token);
      const listed = await as(user.token).get(`/v1/_/gateways?name=${gw.name}`).expect(200);
      expect(listed.body.items).toEqual([gw]);
      expect((await as(user.token).get(`/v1/_/gateways/${gw.id}`).expect(200)).body).toEqual(gw);
    });

    it.each([
      ['a viewer', 'viewer'],
      ['an operator', 'operator'],
    ] as const)(
      'should refuse %s to create, change, delete a gateway or issue its credentials (403)',
      async (_who, role) => {
        const user = role === 'viewer' ? viewer : operator;
        const gw = await createGateway(api, t.admin.token);
        const name = uniqueGatewayName();
        const u = as(user.token);
        expectError(
          await u.post('/v1/_/gateways', { name, endpoint: 'vpn.example.com:1' }),
          403,
          'FORBIDDEN',
        );
        expectError(
          await u.patch(`/v1/_/gateways/${gw.id}`, { description: 'x', optlock: gw.optlock }),
          403,
          'FORBIDDEN',
        );
        expectError(await u.delete(`/v1/_/gateways/${gw.id}`), 403, 'FORBIDDEN');
        expectError(await u.post(`/v1/_/gateways/${gw.id}/credentials`), 403, 'FORBIDDEN');
        // Nothing changed.
        expect(await getGateway(api, t.admin.token, '_', gw.id)).toEqual(gw);
        expect((await as(t.admin.token).get(`/v1/_/gateways?name=${name}`).expect(200)).body.size).toBe(0);
      },
    );

    it('should let an admin create, change, delete a gateway and issue its credentials', async () => {
      const u = as(t.admin.token);
      const created = await u
        .post('/v1/_/gateways', { name: uniqueGatewayName(), endpoint: 'vpn.example.com:1' })
        .expect(201);
      await u
        .patch(`/v1/_/gateways/${created.body.id}`, { description: 'x', optlock: created.body.optlock })
        .expect(200);
      await u.post(`/v1/_/gateways/${created.body.id}/credentials`).expect(201);
      await u.delete(`/v1/_/gateways/${created.body.id}`).expect(204);
    });

    it('should refuse an unauthenticated request with 401', async () => {
      expectError(await request(api.url).get('/v1/_/gateways'), 401, 'UNAUTHORIZED');
    });
  });
});
