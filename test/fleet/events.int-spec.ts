import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import request from 'supertest';
import { DataSource } from 'typeorm';
import type { VpnStatusReport } from '@app/protocol';
import { DeviceLifecycleHandler } from '../../apps/api/src/devices/device-lifecycle.handler';
import { EventFeedRepository } from '../../apps/api/src/events/event-feed.repository';
import { VpnStatusStore } from '../../apps/api/src/vpn/vpn-status.store';
import {
  connectAsDevice,
  createDevice,
  endAll,
  publishBirth,
  publishDc,
  publishStatus,
  type DeviceBody,
} from '../support/device-factories';
import { eventually, expectNothingFor } from '../support/eventually';
import { createTenant, suffix, type Tenant } from '../support/factories';
import { bearer, login } from '../support/http';
import { openSse, type SseMessage, type SseStream } from '../support/sse-client';
import { startTestApi, type TestApi } from '../support/test-api';

const report = (over: Partial<VpnStatusReport> & { seq: number }): VpnStatusReport => ({
  connected: false,
  ipAddress: '0.0.0.0',
  status: 'idle',
  statusCode: '000',
  bootId: 'boot-1',
  ...over,
});

const fleet = (messages: SseMessage[]) => messages.filter((m) => m.event !== 'close' && m.event !== 'reset');
const parsed = (m: SseMessage) =>
  JSON.parse(m.data) as { id: string; type: string; deviceId: string; data: object };

describe('Fleet event stream (GET /v1/{scopeId}/vpn/events)', () => {
  let api: TestApi;
  let root: string;
  let a: Tenant;
  let b: Tenant;
  let aChild: Tenant;
  let aToken: string;
  let bToken: string;
  let ds: DataSource;
  let lifecycle: DeviceLifecycleHandler;
  let statuses: VpnStatusStore;
  const open: SseStream[] = [];

  const stream = async (
    scope: string,
    token: string | null,
    extra: Record<string, string> = {},
    query = '',
  ) => {
    const s = await openSse(`${api.url}/v1/${scope}/vpn/events${query}`, {
      ...(token ? bearer(token) : {}),
      ...extra,
    });
    open.push(s);
    return s;
  };
  const birth = (t: Tenant, d: DeviceBody) =>
    lifecycle.apply('birth', t.account.name, d.clientId, Buffer.alloc(0));
  const dc = (t: Tenant, d: DeviceBody) => lifecycle.apply('dc', t.account.name, d.clientId, Buffer.alloc(0));
  const vpn = (t: Tenant, d: DeviceBody, r: VpnStatusReport) =>
    statuses.apply(t.account.name, d.clientId, r, null);

  beforeAll(async () => {
    api = await startTestApi({
      SSE_HEARTBEAT_MS: '300',
      SSE_AUTH_RECHECK_MS: '200',
      SSE_POLL_INTERVAL_MS: '100',
    });
    root = await login(api);
    a = await createTenant(api, root, { name: `ev-a-${suffix()}` });
    b = await createTenant(api, root, { name: `ev-b-${suffix()}` });
    aChild = await createTenant(api, root, { name: `ev-a1-${suffix()}`, parentScope: a.account.id });
    aToken = await login(api, a.admin.username, a.admin.password);
    bToken = await login(api, b.admin.username, b.admin.password);
    ds = api.app.get(DataSource);
    lifecycle = api.app.get(DeviceLifecycleHandler);
    statuses = api.app.get(VpnStatusStore);
  });

  afterEach(() => {
    for (const s of open.splice(0)) s.close();
  });

  afterAll(async () => {
    await api?.stop();
  });

  it('should send each status and connection change of real MQTT devices in order, with growing ids', async () => {
    const device = await createDevice(api, aToken, '_');
    const s = await stream('_', aToken);
    expect(s.status).toBe(200);
    expect(s.headers['content-type']).toMatch(/^text\/event-stream/);
    const mqtt = await connectAsDevice(api, aToken, '_', device, a.account.name);
    try {
      await publishBirth(mqtt, a.account.name, device.clientId);
      await eventually(() => expect(fleet(s.messages)).toHaveLength(1));
      const up = report({
        connected: true,
        ipAddress: '10.200.0.9',
        status: 'connected',
        statusCode: '004',
        seq: 1,
      });
      await publishStatus(mqtt, a.account.name, device.clientId, up);
      await eventually(() => expect(fleet(s.messages)).toHaveLength(2));
      await publishStatus(
        mqtt,
        a.account.name,
        device.clientId,
        report({ status: 'error', statusCode: '720', seq: 2 }),
      );
      await eventually(() => expect(fleet(s.messages)).toHaveLength(3));
      await publishDc(mqtt, a.account.name, device.clientId);
      await s.waitFor((m) => fleet(m).length === 4);
    } finally {
      await endAll(mqtt);
    }
    const events = fleet(s.messages);
    expect(events.map((m) => m.event)).toEqual([
      'device.connection',
      'vpn.connected',
      'vpn.error',
      'device.connection',
    ]);
    const ids = events.map((m) => BigInt(m.id!));
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeGreaterThan(ids[i - 1]);
    const bodies = events.map(parsed);
    expect(bodies.map((e) => e.id)).toEqual(events.map((m) => m.id));
    expect(bodies[0]).toMatchObject({
      type: 'device.connection',
      deviceId: device.id,
      clientId: device.clientId,
      scopeId: a.account.id,
      data: { deviceConnection: 'CONNECTED', cause: 'BIRTH' },
    });
    expect(bodies[1].data).toEqual({
      connected: true,
      ipAddress: '10.200.0.9',
      status: 'connected',
      statusCode: '004',
    });
    expect(bodies[2].data).toMatchObject({ status: 'error', statusCode: '720' });
    expect(bodies[3].data).toEqual({ deviceConnection: 'DISCONNECTED', cause: 'DC' });
  });

  it('should start from now without a Last-Event-ID', async () => {
    const device = await createDevice(api, aToken, '_');
    await birth(a, device);
    const s = await stream('_', aToken);
    await dc(a, device);
    await s.waitFor((m) => fleet(m).length >= 1);
    expect(fleet(s.messages).map((m) => parsed(m).data)).toEqual([
      { deviceConnection: 'DISCONNECTED', cause: 'DC' },
    ]);
  });

  it('should lose and repeat nothing when a client resumes with Last-Event-ID', async () => {
    const device = await createDevice(api, aToken, '_');
    const first = await stream('_', aToken);
    await birth(a, device);
    await vpn(
      a,
      device,
      report({ connected: true, ipAddress: '10.200.0.2', status: 'connected', statusCode: '004', seq: 1 }),
    );
    await vpn(a, device, report({ status: 'disconnecting', statusCode: '002', seq: 2 }));
    await first.waitFor((m) => fleet(m).length === 3);
    first.close();
    const resumeAfter = fleet(first.messages)[1].id!;
    // Happens while no stream is open.
    await vpn(a, device, report({ status: 'idle', statusCode: '000', seq: 3, ipAddress: '0.0.0.1' }));
    await dc(a, device);
    const second = await stream('_', aToken, { 'Last-Event-ID': resumeAfter });
    await second.waitFor((m) => fleet(m).length === 3);
    await expectNothingFor(400, 'a duplicate would come with the next feed polls (every 100 ms)', () =>
      expect(fleet(second.messages)).toHaveLength(3),
    );
    const all = [...fleet(first.messages).slice(0, 2), ...fleet(second.messages)].map((m) => m.id);
    expect(new Set(all).size).toBe(all.length);
    expect(fleet(second.messages).map((m) => m.event)).toEqual([
      'vpn.disconnected',
      'vpn.disconnected',
      'device.connection',
    ]);
    expect(fleet(second.messages)[0].id).toBe(fleet(first.messages)[2].id);

    // The query parameter works the same way (browsers' first connection).
    const third = await stream('_', aToken, {}, `?lastEventId=${resumeAfter}`);
    await third.waitFor((m) => fleet(m).length === 3);
    expect(fleet(third.messages).map((m) => m.id)).toEqual(fleet(second.messages).map((m) => m.id));
  });

  it("should show a tenant only its subtree's events and a parent its sub-accounts'", async () => {
    const childToken = await login(api, aChild.admin.username, aChild.admin.password);
    const devA = await createDevice(api, aToken, '_');
    const devA1 = await createDevice(api, childToken, '_');
    const devB = await createDevice(api, bToken, '_');
    const sA = await stream('_', aToken);
    const sB = await stream('_', bToken);
    const sChild = await stream(aChild.account.id, aToken);
    const sRoot = await stream(a.account.id, root);
    await birth(b, devB);
    await birth(aChild, devA1);
    await birth(a, devA);
    await sA.waitFor((m) => fleet(m).length === 2);
    await sRoot.waitFor((m) => fleet(m).length === 2);
    await sB.waitFor((m) => fleet(m).length === 1);
    await sChild.waitFor((m) => fleet(m).length === 1);
    await expectNothingFor(
      300,
      "another tenant's event would come with the next feed polls (every 100 ms)",
      () => {
        expect(fleet(sA.messages)).toHaveLength(2);
        expect(fleet(sRoot.messages)).toHaveLength(2);
        expect(fleet(sB.messages)).toHaveLength(1);
        expect(fleet(sChild.messages)).toHaveLength(1);
      },
    );
    expect(fleet(sA.messages).map((m) => parsed(m).deviceId)).toEqual([devA1.id, devA.id]);
    expect(fleet(sRoot.messages).map((m) => parsed(m).deviceId)).toEqual([devA1.id, devA.id]);
    expect(fleet(sB.messages).map((m) => parsed(m).deviceId)).toEqual([devB.id]);
    expect(fleet(sChild.messages).map((m) => parsed(m).deviceId)).toEqual([devA1.id]);
    // Another tenant's scope is refused, as everywhere.
    const foreign = await stream(a.account.id, bToken);
    expect(foreign.status).toBe(403);
    expect(foreign.errorBody).toMatchObject({ result: 'FORBIDDEN' });
  });

  it('should refuse a Last-Event-ID that is not an event id with 400 INVALID_ARGUMENT', async () => {
    for (const bad of ['abc', '-1', '1.5', '99999999999999999999']) {
      const s = await stream('_', aToken, { 'Last-Event-ID': bad });
      expect(s.status).toBe(400);
      expect(s.errorBody).toMatchObject({ result: 'INVALID_ARGUMENT' });
    }
    const q = await stream('_', aToken, {}, '?lastEventId=x1');
    expect(q.status).toBe(400);
  });

  it('should answer a resume point it cannot continue with event: reset and the full state', async () => {
    const device = await createDevice(api, aToken, '_');
    await birth(a, device);
    const s = await stream('_', aToken, { 'Last-Event-ID': '9000000000000000000' });
    await s.waitFor((m) => m.some((x) => x.event === 'reset'));
    const reset = s.messages.find((x) => x.event === 'reset')!;
    const body = JSON.parse(reset.data) as {
      reason: string;
      position: string;
      devices: Array<{ deviceId: string }>;
    };
    expect(body.reason).toBe('unknown');
    expect(reset.id).toBe(body.position);
    expect(body.devices.find((d) => d.deviceId === device.id)).toMatchObject({
      deviceConnection: 'CONNECTED',
      connected: false,
    });
    // Live events follow the reset.
    await dc(a, device);
    await s.waitFor((m) => fleet(m).length === 1);
    expect(BigInt(fleet(s.messages)[0].id!)).toBeGreaterThan(BigInt(reset.id!));
  });

  it('should send a heartbeat comment', async () => {
    const s = await stream('_', aToken);
    await s.waitForComment('heartbeat', 3000);
  });

  it('should end the stream when its access token is revoked', async () => {
    const token = await login(api, a.admin.username, a.admin.password);
    const s = await stream('_', token);
    expect(s.status).toBe(200);
    await request(api.url).post('/v1/authentication/logout').set(bearer(token)).expect(204);
    await s.ended;
    expect(s.messages.at(-1)).toMatchObject({
      event: 'close',
      data: JSON.stringify({ reason: 'token-revoked' }),
    });
  });

  describe('tickets', () => {
    const ticketFor = async (token: string, scope = '_') => {
      const res = await request(api.url).post(`/v1/${scope}/vpn/events/_ticket`).set(bearer(token));
      expect(res.status).toBe(201);
      expect(Date.parse(res.body.expiresOn as string) - Date.now()).toBeLessThanOrEqual(60_000);
      return res.body.ticket as string;
    };

    it('should open one stream without an Authorization header, once', async () => {
      const ticket = await ticketFor(aToken);
      const device = await createDevice(api, aToken, '_');
      const s = await stream('_', null, {}, `?ticket=${encodeURIComponent(ticket)}`);
      expect(s.errorBody).toBeUndefined();
      expect(s.status).toBe(200);
      await birth(a, device);
      await s.waitFor((m) => fleet(m).length === 1);
      expect(parsed(fleet(s.messages)[0]).deviceId).toBe(device.id);
      const again = await stream('_', null, {}, `?ticket=${encodeURIComponent(ticket)}`);
      expect(again.status).toBe(401);
      expect(again.errorBody).toMatchObject({ result: 'UNAUTHORIZED' });
    });

    it('should refuse an expired ticket, an unknown one, and one for another scope', async () => {
      const ticket = await ticketFor(aToken);
      await ds.query(`UPDATE event_stream_ticket SET expires_on = now() - interval '1 second'`);
      expect((await stream('_', null, {}, `?ticket=${ticket}`)).status).toBe(401);
      expect((await stream('_', null, {}, `?ticket=evt_${randomUUID()}`)).status).toBe(401);
      const other = await ticketFor(aToken);
      expect((await stream(aChild.account.id, null, {}, `?ticket=${other}`)).status).toBe(401);
      // The ticket is scoped to where it was issued; its own scope id works.
      const own = await ticketFor(aToken, aChild.account.id);
      expect((await stream(aChild.account.id, null, {}, `?ticket=${own}`)).status).toBe(200);
    });

    it('should end with its access token: a ticket does not outlive the token it was issued with', async () => {
      const token = await login(api, a.admin.username, a.admin.password);
      const ticket = await ticketFor(token);
      const unused = await ticketFor(token);
      const s = await stream('_', null, {}, `?ticket=${ticket}`);
      expect(s.status).toBe(200);
      await request(api.url).post('/v1/authentication/logout').set(bearer(token)).expect(204);
      await s.ended;
      expect((await stream('_', null, {}, `?ticket=${unused}`)).status).toBe(401);
    });
  });

  describe('watermark', () => {
    it('should deliver an event whose transaction commits after a later one, in id order', async () => {
      const device = await createDevice(api, aToken, '_');
      const s = await stream('_', aToken);
      const late = new Client({ connectionString: api.db.url });
      await late.connect();
      try {
        await late.query('BEGIN');
        const [{ id: lateId }] = (
          await late.query<{ id: string }>(
            `INSERT INTO device_event (scope_id, device_id, type, details)
             VALUES ($1, $2, 'DC', '{}'::jsonb) RETURNING id::text AS id`,
            [a.account.id, device.id],
          )
        ).rows;
        // A later id that commits first.
        await birth(a, device);
        await expectNothingFor(
          500,
          'the later event must be held back while the earlier transaction is open: five feed polls pass',
          () => expect(fleet(s.messages)).toEqual([]),
        );
        await late.query('COMMIT');
        await s.waitFor((m) => fleet(m).length === 2);
        const ids = fleet(s.messages).map((m) => m.id!);
        expect(ids[0]).toBe(lateId);
        expect(BigInt(ids[1])).toBeGreaterThan(BigInt(lateId));
      } finally {
        await late.end();
      }
    });

    it('should not move a reader past an id whose transaction is still open (repository)', async () => {
      const feed = api.app.get(EventFeedRepository);
      const device = await createDevice(api, aToken, '_');
      const start = await feed.latestId();
      const late = new Client({ connectionString: api.db.url });
      await late.connect();
      try {
        await late.query('BEGIN');
        await late.query(
          `INSERT INTO device_event (scope_id, device_id, type, details) VALUES ($1, $2, 'LWT', '{}'::jsonb)`,
          [a.account.id, device.id],
        );
        await birth(a, device);
        const page = await feed.readAfter(start, { limit: 100, scope: { subtreePath: `/` } });
        expect(page.events).toEqual([]);
        expect(page.position).toBe(start);
        await late.query('COMMIT');
        const after = await eventually(async () => {
          const p = await feed.readAfter(start, { limit: 100, scope: { accountIds: [a.account.id] } });
          expect(p.events).toHaveLength(2);
          return p;
        });
        expect(after.events.map((e) => e.type)).toEqual(['device.connection', 'device.connection']);
        expect(after.events.map((e) => (e.data as { cause: string }).cause)).toEqual(['LWT', 'BIRTH']);
        const typed = await feed.readAfter(start, { limit: 100, types: ['vpn.error'] });
        expect(typed.events).toEqual([]);
        expect(BigInt(typed.position)).toBeGreaterThanOrEqual(BigInt(after.events[1].id));
      } finally {
        await late.end();
      }
    });
  });
});
