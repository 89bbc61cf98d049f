import type { MqttClient } from 'mqtt';
import request from 'supertest';
import { eventually } from '../support/eventually';
import {
  connectAsDevice,
  createDevice,
  endAll,
  getDevice,
  publishBirth,
  uniqueClientId,
  type DeviceBody,
} from '../support/device-factories';
import { createAccount, createTenant, type Tenant } from '../support/factories';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';
import { encodeCursor } from '../../apps/api/src/common/list-cursor';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function ipv4ToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  expect(parts).toHaveLength(4);
  return parts.reduce((acc, p) => acc * 256 + p, 0);
}

/** Asserts `ip` is a usable host of `cidr`: not the network, not .1 (the server side), not broadcast. */
function expectHostOf(ip: string, cidr: string): void {
  const [net, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  const offset = ipv4ToInt(ip) - ipv4ToInt(net);
  expect({ ip, inSubnet: offset >= 2 && offset < size - 1 }).toEqual({ ip, inSubnet: true });
}

describe('device registry (REST: /v1/{scopeId}/devices)', () => {
  let api: TestApi;
  let rootToken: string;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    api = await startTestApi();
    rootToken = await login(api);
  });

  afterAll(async () => {
    await endAll(...clients);
    await api?.stop();
  });

  const list = (token: string, query: Record<string, string | number | boolean>, scope = '_') =>
    request(api.url).get(`/v1/${scope}/devices`).query(query).set(bearer(token));

  const clientIdsOf = (res: request.Response): string[] =>
    (res.body.items as DeviceBody[]).map((d) => d.clientId);

  describe('CRUD', () => {
    let tenant: Tenant;

    beforeAll(async () => {
      tenant = await createTenant(api, rootToken);
    });

    it('should create, read, update and delete a device', async () => {
      const token = tenant.admin.token;
      const clientId = uniqueClientId('crud');
      const created = await request(api.url)
        .post('/v1/_/devices')
        .set(bearer(token))
        .send({ clientId, displayName: 'Boiler gateway' })
        .expect(201);
      expect(created.body).toMatchObject({
        scopeId: tenant.account.id,
        clientId,
        displayName: 'Boiler gateway',
        status: 'ENABLED',
        connectionStatus: 'NEVER_CONNECTED',
        lastEventOn: null,
        applicationIds: [],
        vpnPublicKey: null,
        mqttUsername: null,
        credentialsIssuedOn: null,
        createdBy: tenant.admin.id,
        modifiedBy: tenant.admin.id,
      });
      expect(created.body.id).toMatch(UUID);
      expect(typeof created.body.optlock).toBe('number');
      const id = created.body.id as string;

      const read = await request(api.url).get(`/v1/_/devices/${id}`).set(bearer(token)).expect(200);
      expect(read.body).toEqual(created.body);
      const byScopeId = await request(api.url)
        .get(`/v1/${tenant.account.id}/devices/${id}`)
        .set(bearer(token))
        .expect(200);
      expect(byScopeId.body).toEqual(created.body);

      const updated = await request(api.url)
        .put(`/v1/_/devices/${id}`)
        .set(bearer(token))
        .send({ displayName: 'Boiler gateway (spare)', status: 'DISABLED', optlock: created.body.optlock })
        .expect(200);
      expect(updated.body).toMatchObject({
        id,
        clientId,
        displayName: 'Boiler gateway (spare)',
        status: 'DISABLED',
        optlock: created.body.optlock + 1,
        tunnelAddress: created.body.tunnelAddress,
      });
      expect(await getDevice(api, token, '_', id)).toEqual(updated.body);

      const listed = await list(token, { clientId }).expect(200);
      expect(listed.body.items).toEqual([updated.body]);

      await request(api.url).delete(`/v1/_/devices/${id}`).set(bearer(token)).expect(204);
      expectError(await request(api.url).get(`/v1/_/devices/${id}`).set(bearer(token)), 404, 'NOT_FOUND');
      expectError(await request(api.url).delete(`/v1/_/devices/${id}`).set(bearer(token)), 404, 'NOT_FOUND');
      expect((await list(token, { clientId }).expect(200)).body.items).toEqual([]);
    });

    it('should return 404 for an unknown device id and 400 for a malformed one', async () => {
      const token = tenant.admin.token;
      const unknown = '00000000-0000-4000-8000-000000000000';
      expectError(
        await request(api.url).get(`/v1/_/devices/${unknown}`).set(bearer(token)),
        404,
        'NOT_FOUND',
      );
      expectError(
        await request(api.url).put(`/v1/_/devices/${unknown}`).set(bearer(token)).send({ optlock: 0 }),
        404,
        'NOT_FOUND',
      );
      expectError(
        await request(api.url).get(`/v1/_/devices/${unknown}/events`).set(bearer(token)),
        404,
        'NOT_FOUND',
      );
      expectError(
        await request(api.url).post(`/v1/_/devices/${unknown}/credentials`).set(bearer(token)),
        404,
        'NOT_FOUND',
      );
      expectError(
        await request(api.url).get('/v1/_/devices/not-a-uuid').set(bearer(token)),
        400,
        'INVALID_ARGUMENT',
      );
    });

    it('should answer 409 OPTLOCK_CONFLICT to an update with a stale optlock and change nothing', async () => {
      const token = tenant.admin.token;
      const device = await createDevice(api, token, '_', { displayName: 'original' });
      const stale = await request(api.url)
        .put(`/v1/_/devices/${device.id}`)
        .set(bearer(token))
        .send({ displayName: 'lost update', optlock: device.optlock + 1 });
      expectError(stale, 409, 'OPTLOCK_CONFLICT');
      expect(await getDevice(api, token, '_', device.id)).toEqual(device);

      // Two writers read the same version: exactly one of them wins.
      const [a, b] = await Promise.all(
        ['writer a', 'writer b'].map((displayName) =>
          request(api.url)
            .put(`/v1/_/devices/${device.id}`)
            .set(bearer(token))
            .send({ displayName, optlock: device.optlock }),
        ),
      );
      expect([a.status, b.status].sort()).toEqual([200, 409]);
      const loser = a.status === 409 ? a : b;
      const winner = a.status === 200 ? a : b;
      expectError(loser, 409, 'OPTLOCK_CONFLICT');
      const now = await getDevice(api, token, '_', device.id);
      expect(now.displayName).toBe(winner.body.displayName);
      expect(now.optlock).toBe(device.optlock + 1);
    });

    it('should answer 409 ENTRY_EXISTS to a duplicate clientId in the same account only', async () => {
      const token = tenant.admin.token;
      const clientId = uniqueClientId('dup');
      const first = await createDevice(api, token, '_', { clientId });
      const dup = await request(api.url)
        .post('/v1/_/devices')
        .set(bearer(token))
        .send({ clientId, displayName: 'second' });
      expectError(dup, 409, 'ENTRY_EXISTS');
      const listed = await list(token, { clientId }).expect(200);
      expect(listed.body.items).toEqual([first]);

      // The same clientId is fine in another account: topics carry the account name.
      const other = await createTenant(api, rootToken);
      const elsewhere = await createDevice(api, other.admin.token, '_', { clientId });
      expect(elsewhere.scopeId).toBe(other.account.id);
    });

    it('should reject invalid device bodies with 400 INVALID_ARGUMENT and create nothing', async () => {
      const token = tenant.admin.token;
      const before = await list(token, { askTotalCount: true, limit: 1 }).expect(200);
      const marker = uniqueClientId('never');
      const bodies: unknown[] = [
        { clientId: 'bad/id' },
        { clientId: 'bad+id' },
        { clientId: 'bad#id' },
        { clientId: 'with space' },
        { clientId: 'ümlaut' },
        { clientId: '' },
        { clientId: 'x'.repeat(65) },
        { clientId: 123 },
        {},
        { displayName: 'no client id' },
        { clientId: marker, unknownField: 1 },
        { clientId: marker, tunnelAddress: '10.200.0.9' },
        { clientId: marker, mqttPasswordDigest: 'x' },
        { clientId: marker, displayName: 'x'.repeat(256) },
        { clientId: marker, status: 'ONLINE' },
        { clientId: marker, connectionStatus: 'CONNECTED' },
      ];
      for (const body of bodies) {
        const res = await request(api.url)
          .post('/v1/_/devices')
          .set(bearer(token))
          .send(body as object);
        expectError(res, 400, 'INVALID_ARGUMENT');
      }
      const after = await list(token, { askTotalCount: true, limit: 1 }).expect(200);
      expect(after.body.totalCount).toBe(before.body.totalCount);
      expect((await list(token, { clientId: marker }).expect(200)).body.items).toEqual([]);

      // A 255-character display name is the longest accepted.
      await createDevice(api, token, '_', { displayName: 'y'.repeat(255) });
    });

    it('should reject invalid updates with 400 INVALID_ARGUMENT and change nothing', async () => {
      const token = tenant.admin.token;
      const device = await createDevice(api, token, '_', { displayName: 'unchanged' });
      const bodies: object[] = [
        { displayName: 'x'.repeat(256), optlock: device.optlock },
        { clientId: 'renamed', optlock: device.optlock },
        { tunnelAddress: '10.0.0.1', optlock: device.optlock },
        { status: 'OFF', optlock: device.optlock },
        { displayName: 'no optlock' },
        { displayName: 'bad optlock', optlock: 'one' },
        { displayName: 'negative optlock', optlock: -1 },
      ];
      for (const body of bodies) {
        const res = await request(api.url).put(`/v1/_/devices/${device.id}`).set(bearer(token)).send(body);
        expectError(res, 400, 'INVALID_ARGUMENT');
      }
      expect(await getDevice(api, token, '_', device.id)).toEqual(device);
    });
  });

  describe('list filters and paging', () => {
    let token: string;
    let account: string;
    const ids: Record<string, DeviceBody> = {};

    beforeAll(async () => {
      const tenant = await createTenant(api, rootToken);
      token = tenant.admin.token;
      account = tenant.account.name;
      ids['alpha-1'] = await createDevice(api, token, '_', {
        clientId: 'alpha-1',
        displayName: 'Boiler Room',
      });
      ids['alpha-2'] = await createDevice(api, token, '_', { clientId: 'alpha-2', status: 'DISABLED' });
      ids['beta-1'] = await createDevice(api, token, '_', {
        clientId: 'beta-1',
        displayName: 'Pump 50%_off',
      });
      // Connected through the broker: on a shared broker its MQTT client id must be unique.
      const gammaId = uniqueClientId('gamma');
      ids.gamma = await createDevice(api, token, '_', { clientId: gammaId });
      const client = await connectAsDevice(api, token, '_', ids.gamma, account);
      clients.push(client);
      await publishBirth(client, account, gammaId, { serialNumber: 'SN-XYZ-0042' });
      await eventually(async () =>
        expect((await getDevice(api, token, '_', ids.gamma.id)).connectionStatus).toBe('CONNECTED'),
      );
    });

    it('should filter by exact clientId', async () => {
      expect(clientIdsOf(await list(token, { clientId: 'alpha-1' }).expect(200))).toEqual(['alpha-1']);
      expect(clientIdsOf(await list(token, { clientId: 'alpha' }).expect(200))).toEqual([]);
      expect(clientIdsOf(await list(token, { clientId: 'ALPHA-1' }).expect(200))).toEqual([]);
    });

    it('should filter by status and connectionStatus', async () => {
      expect(clientIdsOf(await list(token, { status: 'DISABLED' }).expect(200))).toEqual(['alpha-2']);
      expect(clientIdsOf(await list(token, { status: 'ENABLED' }).expect(200))).toEqual([
        'alpha-1',
        'beta-1',
        ids.gamma.clientId,
      ]);
      expect(clientIdsOf(await list(token, { connectionStatus: 'CONNECTED' }).expect(200))).toEqual([
        ids.gamma.clientId,
      ]);
      expect(clientIdsOf(await list(token, { connectionStatus: 'NEVER_CONNECTED' }).expect(200))).toEqual([
        'alpha-1',
        'alpha-2',
        'beta-1',
      ]);
      expect(clientIdsOf(await list(token, { connectionStatus: 'MISSING' }).expect(200))).toEqual([]);
    });

    it('should match matchTerm case-insensitively in clientId, displayName and serialNumber', async () => {
      expect(clientIdsOf(await list(token, { matchTerm: 'ALPHA' }).expect(200))).toEqual([
        'alpha-1',
        'alpha-2',
      ]);
      expect(clientIdsOf(await list(token, { matchTerm: 'boiler' }).expect(200))).toEqual(['alpha-1']);
      expect(clientIdsOf(await list(token, { matchTerm: 'sn-xyz' }).expect(200))).toEqual([
        ids.gamma.clientId,
      ]);
      expect(clientIdsOf(await list(token, { matchTerm: 'nothing-like-it' }).expect(200))).toEqual([]);
    });

    it('should treat LIKE wildcards in matchTerm as literal characters', async () => {
      expect(clientIdsOf(await list(token, { matchTerm: '%' }).expect(200))).toEqual(['beta-1']);
      expect(clientIdsOf(await list(token, { matchTerm: '_' }).expect(200))).toEqual(['beta-1']);
      expect(clientIdsOf(await list(token, { matchTerm: '50%_' }).expect(200))).toEqual(['beta-1']);
      expect(clientIdsOf(await list(token, { matchTerm: '\\' }).expect(200))).toEqual([]);
    });

    it('should combine filters', async () => {
      expect(clientIdsOf(await list(token, { matchTerm: 'alpha', status: 'ENABLED' }).expect(200))).toEqual([
        'alpha-1',
      ]);
      expect(
        clientIdsOf(await list(token, { matchTerm: 'alpha', connectionStatus: 'CONNECTED' }).expect(200)),
      ).toEqual([]);
    });

    it('should reject invalid filters and paging parameters with 400', async () => {
      const bad: Array<Record<string, string>> = [
        { status: 'bogus' },
        { connectionStatus: 'ONLINE' },
        { limit: '0' },
        { limit: '501' },
        { limit: 'ten' },
        { offset: '-1' },
        { askTotalCount: 'yes' },
        { clientId: 'x'.repeat(65) },
        { matchTerm: 'x'.repeat(256) },
        { unknownFilter: 'x' },
        { cursor: 'not a cursor' },
        { cursor: '' },
        { cursor: Buffer.from('alpha-1\nnot-a-uuid').toString('base64url') },
      ];
      for (const query of bad) expectError(await list(token, query), 400, 'INVALID_ARGUMENT');
    });

    it('should page by cursor: nextCursor while more follow, the next page right after it, and never with an offset', async () => {
      const all = ['alpha-1', 'alpha-2', 'beta-1', ids.gamma.clientId];
      const seen: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const res = await list(token, { limit: 1, ...(cursor ? { cursor } : {}) }).expect(200);
        const body = res.body as { limitExceeded: boolean; nextCursor?: string };
        seen.push(...clientIdsOf(res));
        // The cursor is there exactly when more follow.
        expect(body.nextCursor !== undefined).toBe(body.limitExceeded);
        cursor = body.nextCursor;
        pages++;
      } while (cursor && pages < 10);
      expect(seen).toEqual(all);

      // With filters and the total: the count covers the whole filtered list, not what is left.
      const first = await list(token, { matchTerm: 'alpha', limit: 1, askTotalCount: true }).expect(200);
      expect(first.body).toMatchObject({ size: 1, limitExceeded: true, totalCount: 2 });
      expect(Object.keys(first.body as object)).toEqual([
        'items',
        'size',
        'limitExceeded',
        'totalCount',
        'nextCursor',
      ]);
      const rest = await list(token, {
        matchTerm: 'alpha',
        askTotalCount: true,
        cursor: (first.body as { nextCursor: string }).nextCursor,
      }).expect(200);
      expect(rest.body).toEqual({
        items: [expect.objectContaining({ clientId: 'alpha-2' })],
        size: 1,
        limitExceeded: false,
        totalCount: 2,
      });
      expect(rest.text).toBe(JSON.stringify(rest.body));

      const combined = await list(token, {
        offset: 1,
        cursor: (first.body as { nextCursor: string }).nextCursor,
      });
      expectError(combined, 400, 'INVALID_ARGUMENT');
      expect(JSON.stringify(combined.body)).toContain('cursor and offset cannot be combined');
    });

    it('should page with offset and limit, flag limitExceeded and count on request', async () => {
      const all = ['alpha-1', 'alpha-2', 'beta-1', ids.gamma.clientId];
      const first = await list(token, { limit: 3, askTotalCount: true }).expect(200);
      expect(first.body).toMatchObject({ size: 3, limitExceeded: true, totalCount: 4 });
      expect(clientIdsOf(first)).toEqual(all.slice(0, 3));

      const second = await list(token, { offset: 3, limit: 3 }).expect(200);
      expect(second.body).toMatchObject({ size: 1, limitExceeded: false });
      expect(second.body).not.toHaveProperty('totalCount');
      expect(clientIdsOf(second)).toEqual(all.slice(3));

      // Exactly `limit` rows left: not exceeded.
      const exact = await list(token, { offset: 1, limit: 3 }).expect(200);
      expect(exact.body).toMatchObject({ size: 3, limitExceeded: false });
      expect(clientIdsOf(exact)).toEqual(all.slice(1));

      const past = await list(token, { offset: 10, askTotalCount: true }).expect(200);
      expect(past.body).toEqual({ items: [], size: 0, limitExceeded: false, totalCount: 4 });

      // Filters apply to the count as well.
      const filtered = await list(token, { matchTerm: 'alpha', limit: 1, askTotalCount: true }).expect(200);
      expect(filtered.body).toMatchObject({ size: 1, limitExceeded: true, totalCount: 2 });

      const defaults = await list(token, {}).expect(200);
      expect(defaults.body).toMatchObject({ size: 4, limitExceeded: false });
      expect(clientIdsOf(defaults)).toEqual(all);
    });
  });

  describe('tunnel addresses', () => {
    it('should allocate unique addresses from the account subnet that stay stable', async () => {
      const tenant = await createTenant(api, rootToken);
      const token = tenant.admin.token;
      const subnet = tenant.account.vpnSubnet;
      const devices: DeviceBody[] = [];
      for (let i = 0; i < 5; i++) devices.push(await createDevice(api, token));
      const addresses = devices.map((d) => d.tunnelAddress);
      expect(new Set(addresses).size).toBe(addresses.length);
      for (const ip of addresses) expectHostOf(ip, subnet);

      // Updating a device, or deleting another one, never moves an address.
      const [kept, gone] = devices;
      const updated = await request(api.url)
        .put(`/v1/_/devices/${kept.id}`)
        .set(bearer(token))
        .send({ displayName: 'renamed', status: 'DISABLED', optlock: kept.optlock })
        .expect(200);
      expect(updated.body.tunnelAddress).toBe(kept.tunnelAddress);
      await request(api.url).delete(`/v1/_/devices/${gone.id}`).set(bearer(token)).expect(204);
      const newcomer = await createDevice(api, token);
      expectHostOf(newcomer.tunnelAddress, subnet);
      for (const d of devices.slice(2).concat(kept)) {
        expect((await getDevice(api, token, '_', d.id)).tunnelAddress).toBe(d.tunnelAddress);
      }
      const listed = await list(token, { limit: 500 }).expect(200);
      const now = (listed.body.items as DeviceBody[]).map((d) => d.tunnelAddress);
      expect(new Set(now).size).toBe(now.length);
    });

    it('should keep addresses unique under 20 concurrent creations in one account', async () => {
      const tenant = await createTenant(api, rootToken);
      const token = tenant.admin.token;
      const responses = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          request(api.url)
            .post('/v1/_/devices')
            .set(bearer(token))
            .send({ clientId: `burst-${String(i).padStart(2, '0')}` }),
        ),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(20).fill(201));
      const addresses = responses.map((r) => r.body.tunnelAddress as string);
      expect(new Set(addresses).size).toBe(20);
      for (const ip of addresses) expectHostOf(ip, tenant.account.vpnSubnet);
      const listed = await list(token, { limit: 500, askTotalCount: true }).expect(200);
      expect(listed.body.totalCount).toBe(20);
    });

    it('should answer 409 when the account subnet has no free address left', async () => {
      // A /29 has six hosts; .1 is the VPN server's, so five devices fit.
      const account = await createAccount(api, rootToken, { vpnSubnet: '172.31.250.0/29' });
      for (let i = 0; i < 5; i++) {
        const d = await createDevice(api, rootToken, account.id);
        expectHostOf(d.tunnelAddress, '172.31.250.0/29');
      }
      const full = await request(api.url)
        .post(`/v1/${account.id}/devices`)
        .set(bearer(rootToken))
        .send({ clientId: uniqueClientId('full') });
      expectError(full, 409, 'CONFLICT');
    });

    it('should hand out the lowest address a deletion freed, then carry on above the taken ones', async () => {
      const account = await createAccount(api, rootToken, { vpnSubnet: '172.31.251.0/29' });
      const made: DeviceBody[] = [];
      for (let i = 0; i < 4; i++) made.push(await createDevice(api, rootToken, account.id));
      expect(made.map((d) => d.tunnelAddress)).toEqual([
        '172.31.251.2',
        '172.31.251.3',
        '172.31.251.4',
        '172.31.251.5',
      ]);
      const remove = (d: DeviceBody) =>
        request(api.url).delete(`/v1/${account.id}/devices/${d.id}`).set(bearer(rootToken)).expect(204);
      await remove(made[2]);
      await remove(made[0]);
      const next = async () => (await createDevice(api, rootToken, account.id)).tunnelAddress;
      expect(await next()).toBe('172.31.251.2');
      expect(await next()).toBe('172.31.251.4');
      expect(await next()).toBe('172.31.251.6');
      const full = await request(api.url)
        .post(`/v1/${account.id}/devices`)
        .set(bearer(rootToken))
        .send({ clientId: uniqueClientId('full') });
      expectError(full, 409, 'CONFLICT');
      // A refused creation moved nothing: the address a later deletion frees is the next one handed out.
      await remove(made[3]);
      expect(await next()).toBe('172.31.251.5');
    });
  });

  describe('accounts with devices', () => {
    it('should refuse to delete an account that still has devices (409)', async () => {
      const account = await createAccount(api, rootToken);
      const device = await createDevice(api, rootToken, account.id);
      const refused = await request(api.url).delete(`/v1/_/accounts/${account.id}`).set(bearer(rootToken));
      expectError(refused, 409, 'CONFLICT');
      expect((await getDevice(api, rootToken, account.id, device.id)).id).toBe(device.id);

      await request(api.url)
        .delete(`/v1/${account.id}/devices/${device.id}`)
        .set(bearer(rootToken))
        .expect(204);
      await request(api.url).delete(`/v1/_/accounts/${account.id}`).set(bearer(rootToken)).expect(204);
    });
  });

  describe('tenant isolation', () => {
    let a: Tenant;
    let b: Tenant;
    let bDevice: DeviceBody;

    beforeAll(async () => {
      a = await createTenant(api, rootToken);
      b = await createTenant(api, rootToken);
      bDevice = await createDevice(api, b.admin.token, '_', { displayName: 'B only' });
    });

    afterEach(async () => {
      // Whatever A tried, B's device is untouched.
      expect(await getDevice(api, b.admin.token, '_', bDevice.id)).toEqual(bDevice);
    });

    const attempts = (scope: string, id: string) => [
      () => request(api.url).get(`/v1/${scope}/devices/${id}`),
      () =>
        request(api.url).put(`/v1/${scope}/devices/${id}`).send({ displayName: 'taken over', optlock: 0 }),
      () => request(api.url).delete(`/v1/${scope}/devices/${id}`),
      () => request(api.url).post(`/v1/${scope}/devices/${id}/credentials`),
      () => request(api.url).get(`/v1/${scope}/devices/${id}/events`),
      () => request(api.url).get(`/v1/${scope}/devices/${id}/vpn`),
    ];

    it("should list only A's devices after a cursor that names one of B's", async () => {
      const foreign = (
        await request(api.url).get('/v1/_/devices').query({ limit: 1 }).set(bearer(b.admin.token)).expect(200)
      ).body as { items: Array<{ id: string; clientId: string }> };
      const aDevice = await createDevice(api, a.admin.token, '_', { clientId: `zz-${bDevice.clientId}` });
      const cursor = encodeCursor({ clientId: foreign.items[0].clientId, id: foreign.items[0].id });
      const page = await request(api.url).get('/v1/_/devices').query({ cursor }).set(bearer(a.admin.token));
      expect(page.status).toBe(200);
      expect((page.body as { items: Array<{ id: string }> }).items.map((d) => d.id)).toEqual([aDevice.id]);
      await request(api.url).delete(`/v1/_/devices/${aDevice.id}`).set(bearer(a.admin.token)).expect(204);
    });

    it("should answer 404 when A addresses B's device through its own scope", async () => {
      for (const attempt of attempts('_', bDevice.id)) {
        expectError(await attempt().set(bearer(a.admin.token)), 404, 'NOT_FOUND');
      }
      for (const attempt of attempts(a.account.id, bDevice.id)) {
        expectError(await attempt().set(bearer(a.admin.token)), 404, 'NOT_FOUND');
      }
      expect((await list(a.admin.token, { clientId: bDevice.clientId }).expect(200)).body.items).toEqual([]);
      const all = await list(a.admin.token, { limit: 500 }).expect(200);
      expect((all.body.items as DeviceBody[]).map((d) => d.id)).not.toContain(bDevice.id);
    });

    it("should answer 403 when A uses B's scope id, for every device route", async () => {
      for (const attempt of attempts(b.account.id, bDevice.id)) {
        expectError(await attempt().set(bearer(a.admin.token)), 403, 'FORBIDDEN');
      }
      expectError(await list(a.admin.token, {}, b.account.id), 403, 'FORBIDDEN');
    });

    it("should answer 403 when A creates a device in B's account", async () => {
      const clientId = uniqueClientId('intruder');
      const res = await request(api.url)
        .post(`/v1/${b.account.id}/devices`)
        .set(bearer(a.admin.token))
        .send({ clientId });
      expectError(res, 403, 'FORBIDDEN');
      expect((await list(b.admin.token, { clientId }).expect(200)).body.items).toEqual([]);
    });

    it('should answer 403 for a scope id that does not exist, as for one that does', async () => {
      const nowhere = '00000000-0000-4000-8000-00000000abcd';
      expectError(await list(a.admin.token, {}, nowhere), 403, 'FORBIDDEN');
      expectError(
        await request(api.url).get(`/v1/${nowhere}/devices/${bDevice.id}`).set(bearer(a.admin.token)),
        403,
        'FORBIDDEN',
      );
    });

    it("should let the parent account's admin reach the child's device through the child's scope id", async () => {
      const read = await getDevice(api, rootToken, b.account.id, bDevice.id);
      expect(read).toEqual(bDevice);
      // Its own scope is another account: the device is not there.
      expectError(
        await request(api.url).get(`/v1/_/devices/${bDevice.id}`).set(bearer(rootToken)),
        404,
        'NOT_FOUND',
      );
    });
  });
});
