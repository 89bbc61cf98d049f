import { randomBytes } from 'node:crypto';
import request from 'supertest';
import { DISCONNECTED_IP, StatusCodes, type VpnStatusReport } from '@app/protocol';
import { eventually } from '../support/eventually';
import {
  createDevice,
  getVpnStatus,
  publishStatus,
  type DeviceBody,
  type VpnStatusBody,
} from '../support/device-factories';
import { createAccount, createTenant, createUser, type AccountBody, type Tenant } from '../support/factories';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';
import { encodeCursor } from '../../apps/api/src/common/list-cursor';
import { createDeviceIn, SimDevice, startGateway } from '../gateways/gateway-fixtures';

interface FleetItem extends VpnStatusBody {
  deviceId: string;
  clientId: string;
  displayName: string;
  scopeId: string;
}

interface FleetPage {
  items: FleetItem[];
  size: number;
  limitExceeded: boolean;
  totalCount?: number;
  nextCursor?: string;
}

describe('fleet status (GET /v1/{scopeId}/vpn/status and /vpn/summary)', () => {
  let api: TestApi;
  let rootToken: string;
  let tenant: Tenant;
  let token: string;
  let child: AccountBody;
  let other: Tenant;
  const sims: SimDevice[] = [];
  /** The tenant's devices by role in the scenario. */
  const dev: Record<string, DeviceBody> = {};
  let foreign: DeviceBody;
  let childDevice: DeviceBody;
  const bootId = `boot-${randomBytes(4).toString('hex')}`;
  let seq = 0;

  const report = (r: Partial<VpnStatusReport>): VpnStatusReport => ({
    connected: false,
    ipAddress: DISCONNECTED_IP,
    status: 'idle',
    statusCode: StatusCodes.NOT_APPLICABLE,
    bootId,
    seq: ++seq,
    ...r,
  });

  const fleet = (query: Record<string, string | number | boolean> = {}, scope = '_', tok = token) =>
    request(api.url).get(`/v1/${scope}/vpn/status`).query(query).set(bearer(tok));

  const page = async (query: Record<string, string | number | boolean> = {}, scope = '_') => {
    const res = await fleet(query, scope);
    expect(res.status).toBe(200);
    return res.body as FleetPage;
  };

  const clientIds = (p: FleetPage) => p.items.map((i) => i.clientId);

  /** Starts a keyless simulated agent for the device and makes it report `r`; waits until stored. */
  async function online(d: DeviceBody, account: string, r: Partial<VpnStatusReport>): Promise<SimDevice> {
    const sim = await SimDevice.start(api, token, d.scopeId, d, account, { publicKey: null });
    sims.push(sim);
    const sent = report(r);
    await publishStatus(sim.mqtt, account, d.clientId, sent);
    await eventually(async () =>
      expect(await getVpnStatus(api, token, d.scopeId, d.id)).toMatchObject({ statusCode: sent.statusCode }),
    );
    return sim;
  }

  beforeAll(async () => {
    api = await startTestApi();
    rootToken = await login(api);
    tenant = await createTenant(api, rootToken);
    token = tenant.admin.token;
    child = await createAccount(api, token);
    other = await createTenant(api, rootToken);
    const acct = tenant.account.name;
    // Client ids sort as named: the order of the list is by client id.
    for (const name of ['a-up', 'b-missing', 'c-never', 'd-error', 'e-down']) {
      dev[name] = await createDevice(api, token, '_', {
        clientId: `${name}-${randomBytes(3).toString('hex')}`,
      });
    }
    await online(dev['a-up'], acct, {
      connected: true,
      ipAddress: '10.1.2.3',
      status: 'connected',
      statusCode: StatusCodes.ACTIVE,
    });
    const missing = await online(dev['b-missing'], acct, {
      connected: true,
      ipAddress: '10.1.2.4',
      status: 'connected',
      statusCode: StatusCodes.ACTIVE,
    });
    await missing.crash();
    await eventually(async () =>
      expect(await getVpnStatus(api, token, '_', dev['b-missing'].id)).toMatchObject({
        deviceConnection: 'MISSING',
      }),
    );
    await online(dev['d-error'], acct, {
      status: 'error',
      statusCode: StatusCodes.HANDSHAKE_TIMEOUT,
    });
    const down = await online(dev['e-down'], acct, { status: 'idle', statusCode: StatusCodes.DONE });
    await down.disconnect();
    await eventually(async () =>
      expect(await getVpnStatus(api, token, '_', dev['e-down'].id)).toMatchObject({
        deviceConnection: 'DISCONNECTED',
      }),
    );
    childDevice = await createDevice(api, token, child.id, {
      clientId: `f-child-${randomBytes(3).toString('hex')}`,
    });
    foreign = await createDevice(api, other.admin.token, '_', {
      clientId: `a-foreign-${randomBytes(3).toString('hex')}`,
    });
  });

  afterAll(async () => {
    await Promise.all(sims.map((s) => s.close()));
    await api?.stop();
  });

  it('should list every device of the scope, ordered by client id, each item equal to its single status', async () => {
    const p = await page();
    expect(clientIds(p)).toEqual(
      ['a-up', 'b-missing', 'c-never', 'd-error', 'e-down'].map((n) => dev[n].clientId),
    );
    expect(p).toMatchObject({ size: 5, limitExceeded: false });
    for (const item of p.items) {
      const single = await getVpnStatus(api, token, '_', item.deviceId);
      const d = Object.values(dev).find((x) => x.id === item.deviceId)!;
      expect(item).toEqual({
        ...single,
        deviceId: d.id,
        clientId: d.clientId,
        displayName: d.displayName,
        scopeId: tenant.account.id,
      });
    }
    const byName = (n: string) => p.items.find((i) => i.deviceId === dev[n].id)!;
    expect(byName('a-up')).toMatchObject({ connected: true, ipAddress: '10.1.2.3', status: 'connected' });
    // The agent's last word was "up", but the device vanished: not connected, 220.
    expect(byName('b-missing')).toMatchObject({
      connected: false,
      ipAddress: DISCONNECTED_IP,
      status: 'error',
      statusCode: StatusCodes.DEVICE_OFFLINE,
      deviceConnection: 'MISSING',
    });
    expect(byName('c-never')).toMatchObject({
      connected: false,
      status: 'idle',
      statusCode: StatusCodes.UNKNOWN,
      deviceConnection: 'NEVER_CONNECTED',
      reportedOn: null,
    });
  });

  it('should send the documented JSON: the keys in order, no whitespace, dates as ISO strings with ms', async () => {
    const queries: Array<Record<string, string | number | boolean>> = [
      {},
      { askTotalCount: true, limit: 2 },
      { connected: false, askTotalCount: true },
    ];
    for (const query of queries) {
      const res = await fleet(query);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      // The page statement writes the body: byte for byte what JSON.stringify makes of the same value.
      expect(res.text).toBe(JSON.stringify(res.body));
      const body = res.body as FleetPage;
      expect(Object.keys(body)).toEqual([
        'items',
        'size',
        'limitExceeded',
        ...(query.askTotalCount ? ['totalCount'] : []),
        ...(body.limitExceeded ? ['nextCursor'] : []),
      ]);
      for (const item of body.items) {
        expect(Object.keys(item)).toEqual([
          'deviceId',
          'clientId',
          'displayName',
          'scopeId',
          'connected',
          'ipAddress',
          'status',
          'statusCode',
          'deviceConnection',
          'reportedOn',
          'tunnel',
        ]);
        expect(typeof item.connected).toBe('boolean');
        if (item.reportedOn !== null) expect(new Date(item.reportedOn).toISOString()).toBe(item.reportedOn);
      }
    }
    const all = await page({ askTotalCount: true, limit: 2 });
    expect(all).toMatchObject({ size: 2, limitExceeded: true, totalCount: 5 });
    expect(await page({ offset: 100, askTotalCount: true })).toEqual({
      items: [],
      size: 0,
      limitExceeded: false,
      totalCount: 5,
    });
  });

  it("should show a device's tunnel on its gateway as the single status does, in the same JSON", async () => {
    const t = await createTenant(api, rootToken);
    const { gateway, fake } = await startGateway(api, t.admin.token);
    try {
      const device = await createDeviceIn(api, t.admin.token, '_');
      const sim = await SimDevice.start(api, t.admin.token, '_', device, t.account.name, {});
      sims.push(sim);
      const connect = await request(api.url)
        .post(`/v1/_/devices/${device.id}/vpn/_connect`)
        .query({ timeout: 10_000 })
        .set(bearer(t.admin.token));
      expect(connect.status).toBe(200);
      const single = await getVpnStatus(api, t.admin.token, '_', device.id);
      expect(single.tunnel).toMatchObject({ gatewayId: gateway.id });
      const res = await fleet({}, '_', t.admin.token);
      expect(res.status).toBe(200);
      expect(res.text).toBe(JSON.stringify(res.body));
      expect((res.body as FleetPage).items).toEqual([
        {
          deviceId: device.id,
          clientId: device.clientId,
          displayName: device.displayName,
          scopeId: t.account.id,
          ...single,
        },
      ]);
    } finally {
      await fake.close();
    }
  });

  it('should filter by deviceConnection, connected, status and statusCode, as the items show them', async () => {
    expect(clientIds(await page({ deviceConnection: 'MISSING' }))).toEqual([dev['b-missing'].clientId]);
    expect(clientIds(await page({ deviceConnection: 'MISSING,NEVER_CONNECTED' }))).toEqual([
      dev['b-missing'].clientId,
      dev['c-never'].clientId,
    ]);
    expect(clientIds(await page({ connected: true }))).toEqual([dev['a-up'].clientId]);
    expect(clientIds(await page({ connected: false }))).toEqual(
      ['b-missing', 'c-never', 'd-error', 'e-down'].map((n) => dev[n].clientId),
    );
    // Derived values: the MISSING device's stored "connected" report counts as error/220.
    expect(clientIds(await page({ status: 'error' }))).toEqual([
      dev['b-missing'].clientId,
      dev['d-error'].clientId,
    ]);
    expect(clientIds(await page({ statusCode: StatusCodes.DEVICE_OFFLINE }))).toEqual([
      dev['b-missing'].clientId,
    ]);
    expect(clientIds(await page({ statusCode: '720,003' }))).toEqual([
      dev['d-error'].clientId,
      dev['e-down'].clientId,
    ]);
    expect(clientIds(await page({ connected: false, deviceConnection: 'CONNECTED' }))).toEqual([
      dev['d-error'].clientId,
    ]);
    const counted = await page({ connected: false, limit: 2, askTotalCount: true });
    expect(counted).toMatchObject({ size: 2, limitExceeded: true, totalCount: 4 });
  });

  it('should refuse an unknown filter value with 400 naming the allowed values, and change nothing', async () => {
    const bad = await fleet({ deviceConnection: 'ONLINE' });
    expectError(bad, 400, 'INVALID_ARGUMENT');
    expect(bad.body.details).toContain('CONNECTED, DISCONNECTED, MISSING');
    const status = await fleet({ status: 'up' });
    expectError(status, 400, 'INVALID_ARGUMENT');
    expect(status.body.details).toContain('idle, connecting, connected, disconnecting, error');
    const connected = await fleet({ connected: 'yes' });
    expectError(connected, 400, 'INVALID_ARGUMENT');
    expect(connected.body.details).toContain('true, false');
    expectError(await fleet({ statusCode: '22' }), 400, 'INVALID_ARGUMENT');
    expectError(await fleet({ limit: 501 }), 400, 'INVALID_ARGUMENT');
    expectError(await fleet({ recursive: 'maybe' }), 400, 'INVALID_ARGUMENT');
    expect((await page()).size).toBe(5);
  });

  it('should page in a stable order with no device twice or missing', async () => {
    const seen: string[] = [];
    for (let offset = 0; ; offset += 2) {
      const p = await page({ offset, limit: 2 });
      seen.push(...clientIds(p));
      if (!p.limitExceeded) break;
    }
    expect(seen).toEqual(clientIds(await page()));
    const counted = await page({ offset: 1, limit: 2, askTotalCount: true });
    expect(counted).toMatchObject({ size: 2, limitExceeded: true, totalCount: 5 });
    expect(clientIds(counted)).toEqual(seen.slice(1, 3));
    const linked = await page({ deviceConnection: 'NEVER_CONNECTED', askTotalCount: true });
    expect(linked.totalCount).toBe(linked.size);
    expect(await page({ offset: 50, askTotalCount: true })).toEqual({
      items: [],
      size: 0,
      limitExceeded: false,
      totalCount: 5,
    });
  });

  it('should page by cursor: every device once, in order, also over a subtree where client ids repeat', async () => {
    // A device of the child account with the same client id as one of the scope's own devices.
    const twin = await createDevice(api, token, child.id, { clientId: dev['c-never'].clientId });
    try {
      const walk = async (query: Record<string, string | number | boolean>) => {
        const ids: string[] = [];
        let cursor: string | undefined;
        for (let pages = 0; pages < 20; pages++) {
          const p = await page({ ...query, ...(cursor ? { cursor } : {}) });
          ids.push(...p.items.map((i) => i.deviceId));
          expect(p.nextCursor !== undefined).toBe(p.limitExceeded);
          cursor = p.nextCursor;
          if (!cursor) return ids;
        }
        throw new Error('more than 20 pages');
      };
      const ids = (p: FleetPage) => p.items.map((i) => i.deviceId);
      const queries: Array<Record<string, string | boolean>> = [
        { recursive: true },
        {},
        { connected: false, recursive: true },
        { deviceConnection: 'NEVER_CONNECTED', recursive: true },
      ];
      for (const query of queries) {
        const everything = ids(await page({ ...query, limit: 500 }));
        for (const limit of [1, 2, 3]) expect(await walk({ ...query, limit })).toEqual(everything);
      }
      expect(await walk({ recursive: true, limit: 1 })).toContain(twin.id);
      // The count covers the whole list; a cursor page sends the same JSON as JSON.stringify.
      const first = await page({ recursive: true, limit: 2, askTotalCount: true });
      const res = await fleet({ recursive: true, limit: 2, askTotalCount: true, cursor: first.nextCursor! });
      expect(res.status).toBe(200);
      expect(res.text).toBe(JSON.stringify(res.body));
      expect(res.body).toMatchObject({ size: 2, totalCount: 7 });
    } finally {
      await request(api.url).delete(`/v1/${child.id}/devices/${twin.id}`).set(bearer(token)).expect(204);
    }
  });

  it('should refuse a cursor it did not write, or one with an offset, with 400', async () => {
    const { nextCursor } = await page({ limit: 1 });
    const bad: Array<Record<string, string | number>> = [
      { cursor: 'bogus!' },
      { cursor: Buffer.from('a-up\nnot-a-uuid').toString('base64url') },
      { cursor: nextCursor!, offset: 2 },
    ];
    for (const query of bad) expectError(await fleet(query), 400, 'INVALID_ARGUMENT');
  });

  it("should list only the caller's devices after a cursor that names another tenant's device", async () => {
    const mine = await page({}, '_');
    const cursor = encodeCursor({ clientId: foreign.clientId, id: foreign.id });
    const after = (await fleet({ cursor }, '_')).body as FleetPage;
    // Only our own devices, those after the foreign client id in the order.
    expect(after.items.map((i) => i.deviceId)).toEqual(
      mine.items.filter((i) => i.clientId > foreign.clientId).map((i) => i.deviceId),
    );
    expect(after.items.map((i) => i.deviceId)).not.toContain(foreign.id);
    // And the other way round: their list after our cursor holds nothing of ours.
    const ours = encodeCursor({ clientId: dev['a-up'].clientId, id: dev['a-up'].id });
    const res = await fleet({ cursor: ours, recursive: true }, '_', other.admin.token);
    expect(res.status).toBe(200);
    for (const item of (res.body as FleetPage).items) expect(item.scopeId).toBe(other.account.id);
  });

  it('should cover the account subtree with recursive=true, and only the scope without it', async () => {
    expect(clientIds(await page())).not.toContain(childDevice.clientId);
    const all = await page({ recursive: true });
    expect(all.size).toBe(6);
    expect(all.items.find((i) => i.deviceId === childDevice.id)).toMatchObject({ scopeId: child.id });
    expect(clientIds(await page({}, child.id))).toEqual([childDevice.clientId]);
  });

  it("should never show another tenant's devices, and refuse a foreign scope with 403", async () => {
    const everything = await page({ recursive: true, limit: 500 });
    expect(everything.items.map((i) => i.deviceId)).not.toContain(foreign.id);
    expectError(await fleet({}, other.account.id), 403, 'FORBIDDEN');
    expectError(
      await request(api.url).get(`/v1/${other.account.id}/vpn/summary`).set(bearer(token)),
      403,
      'FORBIDDEN',
    );
    const theirs = (await fleet({ recursive: true }, '_', other.admin.token)).body as FleetPage;
    expect(theirs.items.map((i) => i.deviceId)).toEqual([foreign.id]);
  });

  it('should let a viewer read it (vpn:read)', async () => {
    const viewer = await createUser(api, token, tenant.account.id, 'viewer');
    expect((await fleet({}, '_', viewer.token)).status).toBe(200);
  });

  it('should count devices by link and VPN state in the summary', async () => {
    const res = await request(api.url).get('/v1/_/vpn/summary').set(bearer(token));
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      devices: 5,
      deviceConnection: { NEVER_CONNECTED: 1, CONNECTED: 2, DISCONNECTED: 1, MISSING: 1 },
      vpn: {
        connected: 1,
        notConnected: 4,
        byStatus: { idle: 2, connecting: 0, connected: 1, disconnecting: 0, error: 2 },
        byStatusCode: { '000': 1, '003': 1, '004': 1, '220': 1, '720': 1 },
      },
    });
    const recursive = await request(api.url).get('/v1/_/vpn/summary?recursive=true').set(bearer(token));
    expect(recursive.body).toMatchObject({ devices: 6, deviceConnection: { NEVER_CONNECTED: 2 } });
    expectError(
      await request(api.url).get('/v1/_/vpn/summary?recursive=2').set(bearer(token)),
      400,
      'INVALID_ARGUMENT',
    );
  });

  describe('ETag', () => {
    const etagOf = async (query: Record<string, string | number | boolean> = {}) => {
      const res = await fleet(query);
      expect(res.status).toBe(200);
      const etag = res.headers.etag;
      expect(etag).toMatch(/^W\/"[A-Za-z0-9_-]+"$/);
      return etag;
    };

    const conditional = (etag: string, query: Record<string, string | number | boolean> = {}) =>
      request(api.url).get('/v1/_/vpn/status').query(query).set(bearer(token)).set('If-None-Match', etag);

    it('should answer 304 with no body to a repeat, and 200 to another query', async () => {
      const etag = await etagOf();
      const again = await conditional(etag);
      expect(again.status).toBe(304);
      expect(again.text ?? '').toBe('');
      expect(again.headers.etag).toBe(etag);
      expect((await conditional(`"x", ${etag}`)).status).toBe(304);
      expect((await conditional(etag, { limit: 2 })).status).toBe(200);
      expect((await conditional(etag, { recursive: true })).status).toBe(200);
      expect(await etagOf({ limit: 2 })).not.toBe(etag);
      // Each cursor names another page: its own validator, and 304 to its own repeat.
      const { nextCursor } = await page({ limit: 2 });
      const cursorTag = await etagOf({ limit: 2, cursor: nextCursor! });
      expect(cursorTag).not.toBe(await etagOf({ limit: 2 }));
      expect((await conditional(cursorTag, { limit: 2, cursor: nextCursor! })).status).toBe(304);
      expect((await conditional(cursorTag, { limit: 2 })).status).toBe(200);
      // The same query written differently is the same query.
      expect(await etagOf({ deviceConnection: 'MISSING,CONNECTED' })).toBe(
        await etagOf({ deviceConnection: 'CONNECTED,MISSING' }),
      );
    });

    it('should change after a status change (including a new code alone)', async () => {
      const sim = sims.find((s) => s.device.id === dev['d-error'].id)!;
      const before = await etagOf();
      const next = report({ status: 'error', statusCode: StatusCodes.PEER_UNREACHABLE });
      await publishStatus(sim.mqtt, tenant.account.name, sim.clientId, next);
      await eventually(async () =>
        expect(await getVpnStatus(api, token, '_', dev['d-error'].id)).toMatchObject({
          statusCode: StatusCodes.PEER_UNREACHABLE,
        }),
      );
      expect((await conditional(before)).status).toBe(200);
      expect(await etagOf()).not.toBe(before);
    });

    it('should change after a rename', async () => {
      const before = await etagOf();
      const d = dev['c-never'];
      const current = await request(api.url).get(`/v1/_/devices/${d.id}`).set(bearer(token));
      const renamed = await request(api.url)
        .put(`/v1/_/devices/${d.id}`)
        .set(bearer(token))
        .send({ displayName: 'Pump house', optlock: current.body.optlock });
      expect(renamed.status).toBe(200);
      const res = await conditional(before);
      expect(res.status).toBe(200);
      expect((res.body as FleetPage).items.find((i) => i.deviceId === d.id)).toMatchObject({
        displayName: 'Pump house',
      });
    });

    it('should change after a creation, a deletion, and a deletion followed by a creation', async () => {
      const before = await etagOf();
      const created = await createDevice(api, token, '_', {
        clientId: `z-new-${randomBytes(3).toString('hex')}`,
      });
      const afterCreate = await etagOf();
      expect(afterCreate).not.toBe(before);

      const del = (id: string) => request(api.url).delete(`/v1/_/devices/${id}`).set(bearer(token));
      expect((await del(created.id)).status).toBe(204);
      const afterDelete = await etagOf();
      expect(afterDelete).not.toBe(afterCreate);
      // The deletion is recorded (device_removal), not counted: the list is as before, its validator
      // is new (a weak validator may change without the page changing, never the other way round).
      expect(afterDelete).not.toBe(before);
      expect((await conditional(afterCreate)).status).toBe(200);
      expect((await conditional(afterDelete)).status).toBe(304);

      // A deletion of a device that is not the newest, then a creation: same count as before.
      const old = await createDevice(api, token, '_', {
        clientId: `y-old-${randomBytes(3).toString('hex')}`,
      });
      const withOld = await etagOf();
      expect((await del(old.id)).status).toBe(204);
      await createDevice(api, token, '_', { clientId: `y-old-${randomBytes(3).toString('hex')}` });
      expect(await etagOf()).not.toBe(withOld);
    });

    it("should not change for another tenant's activity", async () => {
      const before = await etagOf();
      await createDevice(api, other.admin.token, '_');
      expect((await conditional(before)).status).toBe(304);
    });
  });
});
