import { randomBytes, randomUUID } from 'node:crypto';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { firstHostAddress, ResponseCodes } from '@app/protocol';
import { eventually } from '../support/eventually';
import {
  createAccount,
  createApiKey,
  createTenant,
  createUser,
  loginApiKey,
  type Tenant,
} from '../support/factories';
import { wireGuardKey, type FakeGateway } from '../support/fake-gateway';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';
import { VpnSessionsService } from '../../apps/api/src/sessions/vpn-sessions.service';
import {
  CLIENT_POOL,
  Closer,
  createGateway,
  getGateway,
  startGateway,
  type GatewayBody,
  type SimDevice,
} from '../gateways/gateway-fixtures';
import type { DeviceBody } from '../support/device-factories';
import {
  addressesFor,
  clientPeer,
  clientPeers,
  closeSession,
  devicePeer,
  getSession,
  inCidr,
  ISO_DATE,
  listSessions,
  openOk,
  openSession,
  pingSession,
  SESSION_FIELDS,
  simulatedDevice,
  vpnCommand,
  type SessionBody,
  type SessionCreatedBody,
} from './session-fixtures';

const ENDPOINT = '203.0.113.7:51820';
/** The ping interval of an API started with the defaults (VPN_SESSION_PING_INTERVAL_SECONDS). */
const DEFAULT_PING_INTERVAL = 30;
const DEFAULT_KEEPALIVE = 25;
/** A session expires 3 silent ping intervals after its last sign of life. */
const expiryAfter = (intervalSeconds: number): number => 3 * intervalSeconds * 1000;

/** A tenant with its own gateway (a FakeGateway, first full sync done) and one connected keyed device. */
interface Site {
  t: Tenant;
  gateway: GatewayBody;
  fake: FakeGateway;
  device: DeviceBody;
  sim: SimDevice;
  /** The device's WireGuard key. */
  key: string;
}

async function startSite(api: TestApi, rootToken: string, closer: Closer): Promise<Site> {
  const t = await createTenant(api, rootToken);
  const { gateway, fake } = await startGateway(api, t.admin.token, '_', { endpoint: ENDPOINT });
  closer.add(fake);
  const d = await simulatedDevice(api, closer, t.admin.token, t.account);
  return { t, gateway, fake, ...d };
}

describe("engineers' device sessions (REST, FakeGateway, simulated devices)", () => {
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

  const site = (): Promise<Site> => startSite(api, rootToken, closer);

  /** Nothing of a refused session is left: no active session, no client peer, no change sent to the gateway. */
  const expectNothingLeft = async (s: Site, requestsBefore: number): Promise<void> => {
    expect(await listSessions(api, s.t.admin.token, '_', { active: true })).toEqual([]);
    expect(clientPeers(s.fake)).toEqual([]);
    expect(s.fake.requests.slice(requestsBefore)).toEqual([]);
    expect((await getGateway(api, s.t.admin.token, '_', s.gateway.id)).peers).toBe(1);
  };

  describe('opening a session', () => {
    it('should put a client peer that may reach only the device on the gateway before answering 201', async () => {
      const s = await site();
      const clientKey = wireGuardKey();
      const from = s.fake.requests.length;
      const serial = s.fake.serial;

      const before = Date.now();
      const res = await openSession(api, s.t.admin.token, '_', s.device.id, { publicKey: clientKey });
      const after = Date.now();
      expect(res.status).toBe(201);
      const body = res.body;
      const expectedPeer = clientPeer(body.tunnelAddress, s.t.account.id, clientKey, [s.key]);

      // Already acknowledged by the gateway when the answer came.
      expect(s.fake.peers.get(clientKey)).toEqual(expectedPeer);
      const requests = s.fake.requests.slice(from);
      expect(requests).toHaveLength(1);
      const [apply] = requests;
      expect(apply.command).toBe('apply');
      expect(apply.apply).toEqual({
        serial: serial + 1,
        previous: serial,
        addresses: addressesFor([s.t.account.vpnSubnet]),
        upsert: [expectedPeer],
        remove: [],
      });
      expect(apply.reply).toEqual({ code: ResponseCodes.OK, serial: serial + 1 });
      // The device's own peer is untouched.
      expect(s.fake.peers.get(s.key)).toEqual(devicePeer(s.device, s.t.account.id, s.key));

      expect(body).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        pingToken: expect.any(String),
        deviceId: s.device.id,
        gatewayId: s.gateway.id,
        tunnelAddress: expect.any(String),
        serverEndpoint: ENDPOINT,
        serverPublicKey: s.fake.publicKey,
        allowedIps: [`${s.device.tunnelAddress}/32`],
        dns: [],
        keepalive: DEFAULT_KEEPALIVE,
        pingInterval: DEFAULT_PING_INTERVAL,
        expiresOn: expect.stringMatching(ISO_DATE),
      });
      expect(body.pingToken.length).toBeGreaterThanOrEqual(40);
      expect(inCidr(body.tunnelAddress, CLIENT_POOL)).toBe(true);
      expect(body.tunnelAddress).not.toBe(firstHostAddress(CLIENT_POOL));
      const expires = new Date(body.expiresOn).getTime();
      expect(expires).toBeGreaterThanOrEqual(before + expiryAfter(DEFAULT_PING_INTERVAL) - 1000);
      expect(expires).toBeLessThanOrEqual(after + expiryAfter(DEFAULT_PING_INTERVAL) + 1000);
      expect((await getGateway(api, s.t.admin.token, '_', s.gateway.id)).peers).toBe(2);
    });

    it("should list the client in the device's peer when the gateway's state is published again (full sync)", async () => {
      const s = await site();
      const clientKey = wireGuardKey();
      const session = await openOk(api, s.t.admin.token, '_', s.device.id, clientKey);

      await s.fake.crash();
      await eventually(async () =>
        expect((await getGateway(api, s.t.admin.token, '_', s.gateway.id)).connection).toBe('MISSING'),
      );
      const from = s.fake.requests.length;
      await s.fake.connect();
      const sync = await s.fake.waitForFullSync({ from });
      const expected = [
        devicePeer(s.device, s.t.account.id, s.key, [clientKey]),
        clientPeer(session.tunnelAddress, s.t.account.id, clientKey, [s.key]),
      ];
      expect(sync.sync?.peers).toHaveLength(2);
      expect(sync.sync?.peers).toEqual(expect.arrayContaining(expected));
      expect(sync.sync?.addresses).toEqual(addressesFor([s.t.account.vpnSubnet]));
      // The gateway's restart ends nothing.
      expect((await getSession(api, s.t.admin.token, '_', session.id)).endedOn).toBeNull();
    });

    it('should give every session its own address and ping token', async () => {
      const s = await site();
      const one = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());
      const two = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());
      expect(two.id).not.toBe(one.id);
      expect(two.tunnelAddress).not.toBe(one.tunnelAddress);
      expect(two.pingToken).not.toBe(one.pingToken);
      expect(
        clientPeers(s.fake)
          .map((p) => p.allowedIps[0])
          .sort(),
      ).toEqual([`${one.tunnelAddress}/32`, `${two.tunnelAddress}/32`].sort());
      expect(clientPeers(s.fake).every((p) => p.allow.join() === s.key)).toBe(true);
    });

    it('should give sessions opened at the same time distinct addresses, each held by the gateway', async () => {
      const s = await site();
      const keys = Array.from({ length: 6 }, () => wireGuardKey());
      const answers = await Promise.all(
        keys.map((publicKey) => openSession(api, s.t.admin.token, '_', s.device.id, { publicKey })),
      );
      expect(answers.map((r) => r.status)).toEqual(keys.map(() => 201));
      const bodies = answers.map((r) => r.body as SessionCreatedBody);
      expect(new Set(bodies.map((b) => b.tunnelAddress)).size).toBe(keys.length);
      keys.forEach((key, i) =>
        expect(s.fake.peers.get(key)).toEqual(
          clientPeer(bodies[i].tunnelAddress, s.t.account.id, key, [s.key]),
        ),
      );
      expect(await listSessions(api, s.t.admin.token, '_', { active: true })).toHaveLength(keys.length);
    });

    it('should never show the pingToken again, nor keep it in clear', async () => {
      const s = await site();
      const session = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());
      const res = await request(api.url).get('/v1/_/vpn/sessions').set(bearer(s.t.admin.token)).expect(200);
      expect(res.text).not.toContain(session.pingToken);
      expect(res.text).not.toMatch(/pingToken/i);
      expect(res.body.items).toHaveLength(1);
      expect(Object.keys(res.body.items[0]).sort()).toEqual(SESSION_FIELDS);

      const rows: Array<Record<string, unknown>> = await api.app
        .get(DataSource)
        .query('SELECT * FROM vpn_session WHERE id = $1', [session.id]);
      expect(rows).toHaveLength(1);
      const stored = JSON.stringify(rows[0]);
      const digest = rows[0].ping_token_digest as Buffer;
      for (const form of [session.pingToken, Buffer.from(session.pingToken).toString('hex')]) {
        expect(stored).not.toContain(form);
      }
      expect(digest.toString('utf8')).not.toContain(session.pingToken);
      expect(digest.toString('base64')).not.toContain(session.pingToken);
      expect(digest.toString('base64url')).not.toContain(session.pingToken);
    });
  });

  describe('refusals leave no session and no peer behind', () => {
    it('should refuse a device whose VPN is down with 409 VPN_NOT_CONNECTED', async () => {
      const s = await site();
      const idle = await simulatedDevice(api, closer, s.t.admin.token, s.t.account, { connect: false });
      const from = s.fake.requests.length;
      const res = await openSession(api, s.t.admin.token, '_', idle.device.id, { publicKey: wireGuardKey() });
      expectError(res, 409, 'VPN_NOT_CONNECTED');
      expect(res.body.details).toContain('_connect');
      await expectNothingLeft(s, from);

      // The same once a connected device has been disconnected.
      await vpnCommand(api, s.t.admin.token, '_', s.device.id, '_disconnect').expect(200);
      await eventually(() => expect(s.fake.peers.size).toBe(0));
      const after = s.fake.requests.length;
      const again = await openSession(api, s.t.admin.token, '_', s.device.id, { publicKey: wireGuardKey() });
      expectError(again, 409, 'VPN_NOT_CONNECTED');
      expect(await listSessions(api, s.t.admin.token, '_')).toEqual([]);
      expect(s.fake.requests.slice(after)).toEqual([]);
    });

    it('should refuse a keyless device (connected, but no peer on a gateway) with 409 VPN_NOT_CONNECTED', async () => {
      const s = await site();
      const keyless = await simulatedDevice(api, closer, s.t.admin.token, s.t.account, { publicKey: null });
      const status = await request(api.url)
        .get(`/v1/_/devices/${keyless.device.id}/vpn`)
        .set(bearer(s.t.admin.token))
        .expect(200);
      expect(status.body).toMatchObject({ connected: true, tunnel: null });
      const from = s.fake.requests.length;
      const res = await openSession(api, s.t.admin.token, '_', keyless.device.id, {
        publicKey: wireGuardKey(),
      });
      expectError(res, 409, 'VPN_NOT_CONNECTED');
      expect(res.body.details).toMatch(/WireGuard key/);
      await expectNothingLeft(s, from);
    });

    it.each([
      ['a malformed key', { publicKey: 'not-a-wireguard-key' }],
      ['a key of 31 bytes', { publicKey: randomBytes(31).toString('base64') }],
      ['a key of 33 bytes', { publicKey: randomBytes(33).toString('base64') }],
      ['a hex key', { publicKey: randomBytes(32).toString('hex') }],
      ['a key that is not a string', { publicKey: 42 }],
      ['a null key', { publicKey: null }],
      ['a missing key', {}],
      ['an extra field', { publicKey: wireGuardKey(), allowedIps: ['0.0.0.0/0'] }],
    ])('should refuse %s with 400 INVALID_ARGUMENT', async (_what, body) => {
      const s = await site();
      const from = s.fake.requests.length;
      const res = await openSession(api, s.t.admin.token, '_', s.device.id, body);
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(res.body.details).toMatch(/publicKey|allowedIps/);
      await expectNothingLeft(s, from);
    });

    it('should refuse the key of a device on that gateway with 409 ENTRY_EXISTS', async () => {
      const s = await site();
      const other = await simulatedDevice(api, closer, s.t.admin.token, s.t.account);
      const from = s.fake.requests.length;
      for (const key of [s.key, other.key]) {
        const res = await openSession(api, s.t.admin.token, '_', s.device.id, { publicKey: key });
        expectError(res, 409, 'ENTRY_EXISTS');
      }
      expect(await listSessions(api, s.t.admin.token, '_')).toEqual([]);
      expect(clientPeers(s.fake)).toEqual([]);
      expect(s.fake.requests.slice(from)).toEqual([]);
      expect(s.fake.peers.get(s.key)).toEqual(devicePeer(s.device, s.t.account.id, s.key));
      expect(s.fake.peers.get(other.key)).toEqual(devicePeer(other.device, s.t.account.id, other.key));
    });

    it('should refuse the key of another active session on that gateway with 409 ENTRY_EXISTS, leaving it alone', async () => {
      const s = await site();
      const other = await simulatedDevice(api, closer, s.t.admin.token, s.t.account);
      const key = wireGuardKey();
      const first = await openOk(api, s.t.admin.token, '_', s.device.id, key);
      const held = s.fake.peers.get(key);
      const from = s.fake.requests.length;
      for (const deviceId of [s.device.id, other.device.id]) {
        const res = await openSession(api, s.t.admin.token, '_', deviceId, { publicKey: key });
        expectError(res, 409, 'ENTRY_EXISTS');
      }
      const all = await listSessions(api, s.t.admin.token, '_');
      expect(all.map((x) => [x.id, x.endedOn])).toEqual([[first.id, null]]);
      expect(s.fake.requests.slice(from)).toEqual([]);
      expect(clientPeers(s.fake)).toEqual([held]);
      await pingSession(api, '_', s.device.id, first.id, { pingToken: first.pingToken }).expect(200);
    });

    it('should answer 404 for an unknown device and for a device of another tenant, and 400 for a malformed id', async () => {
      const s = await site();
      const b = await startSite(api, rootToken, closer);
      const from = s.fake.requests.length;
      const fromB = b.fake.requests.length;
      const unknown = await openSession(api, s.t.admin.token, '_', randomUUID(), {
        publicKey: wireGuardKey(),
      });
      expectError(unknown, 404, 'NOT_FOUND');
      // B's device addressed in A's own scope: the same answer, nothing revealed.
      const foreign = await openSession(api, s.t.admin.token, '_', b.device.id, {
        publicKey: wireGuardKey(),
      });
      expectError(foreign, 404, 'NOT_FOUND');
      expect(foreign.body.error).toBe(unknown.body.error);
      const malformed = await openSession(api, s.t.admin.token, '_', 'not-a-uuid', {
        publicKey: wireGuardKey(),
      });
      expectError(malformed, 400, 'INVALID_ARGUMENT');
      await expectNothingLeft(s, from);
      expect(b.fake.requests.slice(fromB)).toEqual([]);
      expect(await listSessions(api, b.t.admin.token, '_')).toEqual([]);
    });

    it("should answer 503 GATEWAY_UNAVAILABLE when the device's gateway is offline, leaving nothing", async () => {
      const s = await site();
      await s.fake.disconnect();
      await eventually(async () =>
        expect((await getGateway(api, s.t.admin.token, '_', s.gateway.id)).connection).toBe('DISCONNECTED'),
      );
      const from = s.fake.requests.length;
      const res = await openSession(api, s.t.admin.token, '_', s.device.id, { publicKey: wireGuardKey() });
      expectError(res, 503, 'GATEWAY_UNAVAILABLE');
      expect(await listSessions(api, s.t.admin.token, '_')).toEqual([]);
      expect(s.fake.requests.slice(from)).toEqual([]);
      expect((await getGateway(api, s.t.admin.token, '_', s.gateway.id)).peers).toBe(1);
    });

    it('should answer 504 GATEWAY_TIMEOUT when the gateway never acknowledges, ending the session (gateway_error)', async () => {
      const s = await site();
      const clientKey = wireGuardKey();
      const from = s.fake.requests.length;
      s.fake.hold();
      const res = await openSession(api, s.t.admin.token, '_', s.device.id, { publicKey: clientKey });
      expectError(res, 504, 'GATEWAY_TIMEOUT');
      const [added] = s.fake.requests.slice(from);
      expect(added.apply?.upsert.map((p) => p.publicKey)).toEqual([clientKey]);
      expect(added.reply).toBeUndefined();

      expect(await listSessions(api, s.t.admin.token, '_', { active: true })).toEqual([]);
      const [ended] = await listSessions(api, s.t.admin.token, '_');
      expect(ended).toMatchObject({
        kind: 'device',
        deviceId: s.device.id,
        gatewayId: s.gateway.id,
        endedOn: expect.stringMatching(ISO_DATE),
        endReason: 'gateway_error',
      });

      // Once the gateway answers again, the client peer leaves it; the device's peer stays.
      s.fake.release();
      await eventually(() => {
        expect(s.fake.peers.has(clientKey)).toBe(false);
        expect(s.fake.requests.at(-1)?.reply?.code).toBe(ResponseCodes.OK);
      }, 20_000);
      expect([...s.fake.peers.keys()]).toEqual([s.key]);
      expect((await getGateway(api, s.t.admin.token, '_', s.gateway.id)).peers).toBe(1);
    });
  });

  describe('liveness', () => {
    it('should move expiresOn with a ping carrying the pingToken, addressed with _ or the real scope id', async () => {
      const s = await site();
      const session = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());

      const viaUnderscore = await pingSession(api, '_', s.device.id, session.id, {
        pingToken: session.pingToken,
      });
      expect(viaUnderscore.status).toBe(200);
      expect(Object.keys(viaUnderscore.body)).toEqual(['expiresOn']);
      expect(viaUnderscore.body.expiresOn).toMatch(ISO_DATE);
      expect(new Date(viaUnderscore.body.expiresOn).getTime()).toBeGreaterThan(
        new Date(session.expiresOn).getTime(),
      );

      const viaScope = await pingSession(api, s.t.account.id, s.device.id, session.id, {
        pingToken: session.pingToken,
      });
      expect(viaScope.status).toBe(200);
      const expires = new Date(viaScope.body.expiresOn).getTime();
      expect(expires).toBeGreaterThan(new Date(viaUnderscore.body.expiresOn).getTime());

      const row = await getSession(api, s.t.admin.token, '_', session.id);
      expect(new Date(row.lastSeenOn).getTime()).toBe(expires - expiryAfter(DEFAULT_PING_INTERVAL));
      expect(row.endedOn).toBeNull();
    });

    it('should answer 404 to a ping with a wrong token or a foreign scope id, changing nothing', async () => {
      const s = await site();
      const b = await createTenant(api, rootToken);
      const session = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());
      const other = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());
      const before = await getSession(api, s.t.admin.token, '_', session.id);

      const refusals = [
        pingSession(api, '_', s.device.id, session.id, { pingToken: 'wrong' }),
        pingSession(api, '_', s.device.id, session.id, { pingToken: `${session.pingToken}x` }),
        pingSession(api, '_', s.device.id, session.id, { pingToken: other.pingToken }),
        pingSession(api, '_', s.device.id, randomUUID(), { pingToken: session.pingToken }),
        pingSession(api, b.account.id, s.device.id, session.id, { pingToken: session.pingToken }),
        pingSession(api, randomUUID(), s.device.id, session.id, { pingToken: session.pingToken }),
      ];
      for (const res of await Promise.all(refusals)) expectError(res, 404, 'NOT_FOUND');
      // The wrong device with the right session id and token is not the session either.
      const idle = await simulatedDevice(api, closer, s.t.admin.token, s.t.account, { connect: false });
      expectError(
        await pingSession(api, '_', idle.device.id, session.id, { pingToken: session.pingToken }),
        404,
        'NOT_FOUND',
      );
      expectError(
        await pingSession(api, 'not-a-scope', s.device.id, session.id, { pingToken: session.pingToken }),
        400,
        'INVALID_ARGUMENT',
      );
      // Neither a token nor a bearer: authentication is required.
      expectError(await pingSession(api, '_', s.device.id, session.id), 401, 'UNAUTHORIZED');

      expect(await getSession(api, s.t.admin.token, '_', session.id)).toEqual(before);
    });

    it('should accept a ping with the bearer token of a user with vpn:session, and refuse a viewer with 403', async () => {
      const s = await site();
      const operator = await createUser(api, s.t.admin.token, '_', 'operator');
      const viewer = await createUser(api, s.t.admin.token, '_', 'viewer');
      const session = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());

      const byOperator = await pingSession(api, '_', s.device.id, session.id, { token: operator.token });
      expect(byOperator.status).toBe(200);
      const moved = new Date(byOperator.body.expiresOn).getTime();
      expect(moved).toBeGreaterThan(new Date(session.expiresOn).getTime());
      const byAdmin = await pingSession(api, s.t.account.id, s.device.id, session.id, {
        token: s.t.admin.token,
      });
      expect(byAdmin.status).toBe(200);

      const before = await getSession(api, s.t.admin.token, '_', session.id);
      const byViewer = await pingSession(api, '_', s.device.id, session.id, { token: viewer.token });
      expectError(byViewer, 403, 'FORBIDDEN');
      expect(await getSession(api, s.t.admin.token, '_', session.id)).toEqual(before);
      // An unknown session with a valid bearer: 404, as with a token.
      expectError(
        await pingSession(api, '_', s.device.id, randomUUID(), { token: operator.token }),
        404,
        'NOT_FOUND',
      );
    });
  });

  describe('ending a session', () => {
    it('should end a session on DELETE (204, closed), take its peer off the gateway, then answer 404', async () => {
      const s = await site();
      const clientKey = wireGuardKey();
      const session = await openOk(api, s.t.admin.token, '_', s.device.id, clientKey);
      const from = s.fake.requests.length;

      const res = await closeSession(api, s.t.admin.token, '_', s.device.id, session.id);
      expect(res.status).toBe(204);
      expect(res.text).toBe('');
      const removal = await s.fake.waitForRequest(
        (r) => r.apply?.remove.includes(clientKey) === true && r.reply?.code === ResponseCodes.OK,
        { from },
      );
      expect(removal.apply?.upsert).toEqual([]);
      expect(removal.apply?.remove).toEqual([clientKey]);
      expect([...s.fake.peers.keys()]).toEqual([s.key]);

      expect(await getSession(api, s.t.admin.token, '_', session.id)).toMatchObject({
        endedOn: expect.stringMatching(ISO_DATE),
        endReason: 'closed',
      });
      expectError(await closeSession(api, s.t.admin.token, '_', s.device.id, session.id), 404, 'NOT_FOUND');
      expectError(
        await pingSession(api, '_', s.device.id, session.id, { pingToken: session.pingToken }),
        404,
        'NOT_FOUND',
      );
      expectError(await closeSession(api, s.t.admin.token, '_', s.device.id, randomUUID()), 404, 'NOT_FOUND');
      // The device keeps its tunnel.
      const status = await request(api.url)
        .get(`/v1/_/devices/${s.device.id}/vpn`)
        .set(bearer(s.t.admin.token))
        .expect(200);
      expect(status.body.connected).toBe(true);
    });

    it("should end the device's sessions when the device's VPN is disconnected (device_disconnected)", async () => {
      const s = await site();
      const one = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());
      const two = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());
      await vpnCommand(api, s.t.admin.token, '_', s.device.id, '_disconnect').expect(200);
      await eventually(async () => {
        const rows = await listSessions(api, s.t.admin.token, '_');
        expect(rows.map((r) => [r.id, r.endReason]).sort()).toEqual(
          [
            [one.id, 'device_disconnected'],
            [two.id, 'device_disconnected'],
          ].sort(),
        );
      });
      await eventually(() => expect(s.fake.peers.size).toBe(0));
      expectError(
        await pingSession(api, '_', s.device.id, one.id, { pingToken: one.pingToken }),
        404,
        'NOT_FOUND',
      );
    });

    it("should end the device's sessions when the device is deleted (device_deleted), keeping them in the audit trail", async () => {
      const s = await site();
      const session = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());
      await request(api.url).delete(`/v1/_/devices/${s.device.id}`).set(bearer(s.t.admin.token)).expect(204);
      await eventually(async () =>
        expect(await getSession(api, s.t.admin.token, '_', session.id)).toMatchObject({
          deviceId: s.device.id,
          endedOn: expect.stringMatching(ISO_DATE),
          endReason: 'device_deleted',
        }),
      );
      await eventually(() => expect(s.fake.peers.size).toBe(0));
      const byDevice = await listSessions(api, s.t.admin.token, '_', { deviceId: s.device.id });
      expect(byDevice.map((r) => r.id)).toEqual([session.id]);
    });

    it("should end the device's sessions when the device is disabled", async () => {
      const s = await site();
      const session = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());
      const current = await request(api.url)
        .get(`/v1/_/devices/${s.device.id}`)
        .set(bearer(s.t.admin.token))
        .expect(200);
      await request(api.url)
        .put(`/v1/_/devices/${s.device.id}`)
        .set(bearer(s.t.admin.token))
        .send({ status: 'DISABLED', optlock: current.body.optlock })
        .expect(200);
      const ended = await eventually(async () => {
        const row = await getSession(api, s.t.admin.token, '_', session.id);
        expect(row.endedOn).not.toBeNull();
        return row;
      });
      expect(ended.endReason).toBe('device_disconnected');
      await eventually(() => expect(s.fake.peers.size).toBe(0));
    });

    it("should end the device's sessions when its BIRTH announces no key any more (device_disconnected)", async () => {
      const s = await site();
      const clientKey = wireGuardKey();
      const session = await openOk(api, s.t.admin.token, '_', s.device.id, clientKey);
      await s.sim.birth(null);
      await eventually(async () =>
        expect((await getSession(api, s.t.admin.token, '_', session.id)).endReason).toBe(
          'device_disconnected',
        ),
      );
      await eventually(() => expect(s.fake.peers.size).toBe(0));
    });

    it("should keep the device's sessions when its BIRTH announces a new key, its new peer listing the client", async () => {
      const s = await site();
      const clientKey = wireGuardKey();
      const session = await openOk(api, s.t.admin.token, '_', s.device.id, clientKey);
      const from = s.fake.requests.length;
      const newKey = wireGuardKey();
      await s.sim.birth(newKey);
      const apply = await s.fake.waitForRequest(
        (r) => r.command === 'apply' && r.reply?.code === ResponseCodes.OK,
        { from },
      );
      expect(apply.apply?.upsert).toEqual([devicePeer(s.device, s.t.account.id, newKey, [clientKey])]);
      expect(apply.apply?.remove).toEqual([s.key]);
      expect(s.fake.peers.has(clientKey)).toBe(true);
      await api.app.get(VpnSessionsService).sweep();
      expect((await getSession(api, s.t.admin.token, '_', session.id)).endedOn).toBeNull();
      await pingSession(api, '_', s.device.id, session.id, { pingToken: session.pingToken }).expect(200);
    });

    it("should not end a session on its user's logout or change of role", async () => {
      const s = await site();
      const operator = await createUser(api, s.t.admin.token, '_', 'operator');
      const session = await openOk(api, operator.token, '_', s.device.id, wireGuardKey());
      await request(api.url).post('/v1/authentication/logout').set(bearer(operator.token)).expect(204);
      await request(api.url)
        .put(`/v1/_/users/${operator.id}`)
        .set(bearer(s.t.admin.token))
        .send({ role: 'viewer', optlock: operator.optlock })
        .expect(200);
      await api.app.get(VpnSessionsService).sweep();
      expect((await getSession(api, s.t.admin.token, '_', session.id)).endedOn).toBeNull();
      await pingSession(api, '_', s.device.id, session.id, { pingToken: session.pingToken }).expect(200);
      expect(clientPeers(s.fake)).toHaveLength(1);
    });

    it('should answer 404 to a DELETE naming the session under another device, leaving it active', async () => {
      const s = await site();
      const other = await simulatedDevice(api, closer, s.t.admin.token, s.t.account, { connect: false });
      const session = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());
      expectError(
        await closeSession(api, s.t.admin.token, '_', other.device.id, session.id),
        404,
        'NOT_FOUND',
      );
      expect((await getSession(api, s.t.admin.token, '_', session.id)).endedOn).toBeNull();
      expect(clientPeers(s.fake)).toHaveLength(1);
    });

    it("should end the device's sessions when its tunnel moves to another gateway", async () => {
      const s = await site();
      const { gateway: second, fake: secondFake } = await startGateway(api, s.t.admin.token, '_', {
        endpoint: '203.0.113.8:51820',
      });
      closer.add(secondFake);
      const clientKey = wireGuardKey();
      const session = await openOk(api, s.t.admin.token, '_', s.device.id, clientKey);
      expect(session.gatewayId).toBe(s.gateway.id);

      const current = await request(api.url)
        .get(`/v1/_/devices/${s.device.id}`)
        .set(bearer(s.t.admin.token))
        .expect(200);
      await request(api.url)
        .put(`/v1/_/devices/${s.device.id}`)
        .set(bearer(s.t.admin.token))
        .send({ gatewayId: second.id, optlock: current.body.optlock })
        .expect(200);
      const moved = await vpnCommand(api, s.t.admin.token, '_', s.device.id, '_connect').expect(200);
      expect(moved.body.tunnel.gatewayId).toBe(second.id);
      await eventually(() => expect(s.fake.peers.has(s.key)).toBe(false));

      // The session's client peer is on the old gateway, which no longer carries the device: it
      // can reach nothing, so the session must end (at once, or at the latest by the sweep) and its
      // peer leave the old gateway.
      await api.app.get(VpnSessionsService).sweep();
      await eventually(async () =>
        expect((await getSession(api, s.t.admin.token, '_', session.id)).endedOn).not.toBeNull(),
      );
      await eventually(() => expect(s.fake.peers.has(clientKey)).toBe(false));
    });

    it('should keep the traffic the gateway reported for the client in the ended session', async () => {
      const s = await site();
      const clientKey = wireGuardKey();
      const session = await openOk(api, s.t.admin.token, '_', s.device.id, clientKey);
      await s.fake.reportPeers([
        { publicKey: clientKey, lastHandshakeOn: Date.now(), rxBytes: 123_456, txBytes: 7_890 },
        { publicKey: s.key, lastHandshakeOn: Date.now(), rxBytes: 5, txBytes: 6 },
      ]);
      await eventually(async () =>
        expect(await getSession(api, s.t.admin.token, '_', session.id)).toMatchObject({
          endedOn: null,
          rxBytes: 123_456,
          txBytes: 7_890,
        }),
      );
      await closeSession(api, s.t.admin.token, '_', s.device.id, session.id).expect(204);
      const ended = await getSession(api, s.t.admin.token, '_', session.id);
      expect(ended).toMatchObject({ endReason: 'closed', rxBytes: 123_456, txBytes: 7_890 });

      // The DB row itself holds them (the peer is gone).
      const rows: Array<{ rx_bytes: string; tx_bytes: string }> = await api.app
        .get(DataSource)
        .query('SELECT rx_bytes, tx_bytes FROM vpn_session WHERE id = $1', [session.id]);
      expect(rows.map((r) => [Number(r.rx_bytes), Number(r.tx_bytes)])).toEqual([[123_456, 7_890]]);

      // A late report about the removed key changes nothing (the device's, sent after it, shows it was read).
      await s.fake.reportPeers([
        { publicKey: clientKey, lastHandshakeOn: null, rxBytes: 999_999, txBytes: 999_999 },
      ]);
      await s.fake.reportPeers([{ publicKey: s.key, lastHandshakeOn: null, rxBytes: 50, txBytes: 60 }]);
      await eventually(async () => {
        const status = await request(api.url)
          .get(`/v1/_/devices/${s.device.id}/vpn`)
          .set(bearer(s.t.admin.token))
          .expect(200);
        expect(status.body.tunnel).toMatchObject({ rxBytes: 50, txBytes: 60 });
      });
      expect(await getSession(api, s.t.admin.token, '_', session.id)).toEqual(ended);
    });
  });

  describe('tenant isolation and roles', () => {
    it("should not let another tenant open, list, ping with a bearer or delete tenant A's sessions (403 in A's scope, 404 in its own)", async () => {
      const a = await site();
      const b = await createTenant(api, rootToken);
      const session = await openOk(api, a.t.admin.token, '_', a.device.id, wireGuardKey());
      const before = await getSession(api, a.t.admin.token, '_', session.id);
      const from = a.fake.requests.length;
      const B = b.admin.token;
      const scopeA = a.t.account.id;

      expectError(
        await openSession(api, B, scopeA, a.device.id, { publicKey: wireGuardKey() }),
        403,
        'FORBIDDEN',
      );
      expectError(
        await openSession(api, B, '_', a.device.id, { publicKey: wireGuardKey() }),
        404,
        'NOT_FOUND',
      );
      expectError(await request(api.url).get(`/v1/${scopeA}/vpn/sessions`).set(bearer(B)), 403, 'FORBIDDEN');
      expect(await listSessions(api, B, '_')).toEqual([]);
      expect(await listSessions(api, B, '_', { deviceId: a.device.id })).toEqual([]);
      expectError(await pingSession(api, scopeA, a.device.id, session.id, { token: B }), 403, 'FORBIDDEN');
      expectError(await pingSession(api, '_', a.device.id, session.id, { token: B }), 404, 'NOT_FOUND');
      expectError(await closeSession(api, B, scopeA, a.device.id, session.id), 403, 'FORBIDDEN');
      expectError(await closeSession(api, B, '_', a.device.id, session.id), 404, 'NOT_FOUND');

      expect(await getSession(api, a.t.admin.token, '_', session.id)).toEqual(before);
      expect(a.fake.requests.slice(from)).toEqual([]);
      expect(clientPeers(a.fake)).toHaveLength(1);
    });

    it('should answer the same 403 for an unknown scope id as for a foreign one', async () => {
      const a = await site();
      const b = await createTenant(api, rootToken);
      const foreign = await openSession(api, b.admin.token, a.t.account.id, a.device.id, {
        publicKey: wireGuardKey(),
      });
      const unknown = await openSession(api, b.admin.token, randomUUID(), a.device.id, {
        publicKey: wireGuardKey(),
      });
      expectError(foreign, 403, 'FORBIDDEN');
      expectError(unknown, 403, 'FORBIDDEN');
      expect(unknown.body).toEqual(foreign.body);
    });

    it('should not let a viewer open or delete a session (403), and let an operator do both', async () => {
      const s = await site();
      const viewer = await createUser(api, s.t.admin.token, '_', 'viewer');
      const operator = await createUser(api, s.t.admin.token, '_', 'operator');
      const from = s.fake.requests.length;
      expectError(
        await openSession(api, viewer.token, '_', s.device.id, { publicKey: wireGuardKey() }),
        403,
        'FORBIDDEN',
      );
      await expectNothingLeft(s, from);

      const session = await openOk(api, operator.token, '_', s.device.id, wireGuardKey());
      expectError(await closeSession(api, viewer.token, '_', s.device.id, session.id), 403, 'FORBIDDEN');
      // A viewer reads the audit trail (vpn:read).
      const seen = await listSessions(api, viewer.token, '_');
      expect(seen.map((r) => [r.id, r.userId, r.endedOn])).toEqual([[session.id, operator.id, null]]);

      await closeSession(api, operator.token, '_', s.device.id, session.id).expect(204);
      expect((await getSession(api, viewer.token, '_', session.id)).endReason).toBe('closed');
    });

    it("should let a parent account's admin open a session to a child account's device, in the child's audit trail", async () => {
      const s = await site();
      const session = await openOk(api, rootToken, s.t.account.id, s.device.id, wireGuardKey());
      expect(session.deviceId).toBe(s.device.id);
      const rows = await listSessions(api, s.t.admin.token, '_');
      expect(rows.map((r) => r.id)).toEqual([session.id]);
      expect(clientPeers(s.fake)[0]?.accountId).toBe(s.t.account.id);
      await closeSession(api, s.t.admin.token, '_', s.device.id, session.id).expect(204);
    });

    it('should record who opened each session (user or API key), its kind, gateway, times and end reason', async () => {
      const s = await site();
      const key = await createApiKey(api, s.t.admin.token, '_', 'operator');
      const keyToken = await loginApiKey(api, key.apiKey);
      const byUser = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());
      const byKey = await openOk(api, keyToken, '_', s.device.id, wireGuardKey());
      await closeSession(api, s.t.admin.token, '_', s.device.id, byUser.id).expect(204);

      const rows = await listSessions(api, s.t.admin.token, '_');
      // Newest first.
      expect(rows.map((r) => r.id)).toEqual([byKey.id, byUser.id]);
      const [keyRow, userRow] = rows;
      expect(userRow).toEqual({
        id: byUser.id,
        kind: 'device',
        deviceId: s.device.id,
        gatewayId: s.gateway.id,
        userId: s.t.admin.id,
        apiKeyId: null,
        tunnelAddress: byUser.tunnelAddress,
        startedOn: expect.stringMatching(ISO_DATE),
        lastSeenOn: expect.stringMatching(ISO_DATE),
        endedOn: expect.stringMatching(ISO_DATE),
        endReason: 'closed',
        rxBytes: 0,
        txBytes: 0,
      });
      expect(new Date(userRow.endedOn as string).getTime()).toBeGreaterThanOrEqual(
        new Date(userRow.startedOn).getTime(),
      );
      expect(keyRow).toEqual({
        id: byKey.id,
        kind: 'device',
        deviceId: s.device.id,
        gatewayId: s.gateway.id,
        userId: null,
        apiKeyId: key.id,
        tunnelAddress: byKey.tunnelAddress,
        startedOn: expect.stringMatching(ISO_DATE),
        lastSeenOn: expect.stringMatching(ISO_DATE),
        endedOn: null,
        endReason: null,
        rxBytes: 0,
        txBytes: 0,
      });
      expect(new Date(keyRow.startedOn).getTime()).toBeGreaterThanOrEqual(
        new Date(userRow.startedOn).getTime(),
      );
    });

    it('should filter the audit trail by active, deviceId and kind', async () => {
      const s = await site();
      const other = await simulatedDevice(api, closer, s.t.admin.token, s.t.account);
      const ended = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());
      const active = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());
      const onOther = await openOk(api, s.t.admin.token, '_', other.device.id, wireGuardKey());
      await closeSession(api, s.t.admin.token, '_', s.device.id, ended.id).expect(204);

      const ids = async (query: Record<string, string>) =>
        (await listSessions(api, s.t.admin.token, '_', query)).map((r: SessionBody) => r.id).sort();
      expect(await ids({})).toEqual([ended.id, active.id, onOther.id].sort());
      expect(await ids({ active: 'true' })).toEqual([active.id, onOther.id].sort());
      expect(await ids({ active: 'false' })).toEqual([ended.id]);
      expect(await ids({ deviceId: s.device.id })).toEqual([ended.id, active.id].sort());
      expect(await ids({ deviceId: other.device.id, active: 'true' })).toEqual([onOther.id]);
      expect(await ids({ deviceId: randomUUID() })).toEqual([]);
      expect(await ids({ kind: 'device' })).toEqual([ended.id, active.id, onOther.id].sort());
      expect(await ids({ kind: 'site' })).toEqual([]);
      expect(await ids({ kind: 'device', active: 'false', deviceId: s.device.id })).toEqual([ended.id]);
      const counted = await request(api.url)
        .get('/v1/_/vpn/sessions')
        .query({ askTotalCount: true, limit: 1, active: true })
        .set(bearer(s.t.admin.token))
        .expect(200);
      expect(counted.body).toMatchObject({ size: 1, limitExceeded: true, totalCount: 2 });
    });

    it.each([
      ['active', 'yes'],
      ['active', '1'],
      ['deviceId', 'not-a-uuid'],
      ['kind', 'engineer'],
      ['kind', 'DEVICE'],
      ['unknown', 'x'],
    ])('should refuse the audit filter %s=%s with 400', async (name, value) => {
      const t = await createTenant(api, rootToken);
      const res = await request(api.url)
        .get('/v1/_/vpn/sessions')
        .query({ [name]: value })
        .set(bearer(t.admin.token));
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(res.body.details).toContain(name);
    });

    it('should list the gateways of the account and its ancestors as locations, nearest first, and none of other tenants', async () => {
      const t = await createTenant(api, rootToken);
      const u = await createTenant(api, rootToken);
      const ownFirst = await createGateway(api, t.admin.token, '_', { endpoint: '198.51.100.1:51820' });
      const ownSecond = await createGateway(api, t.admin.token, '_', { endpoint: '198.51.100.2:51820' });
      const child = await createAccount(api, t.admin.token);
      const childGateway = await createGateway(api, t.admin.token, child.id, {
        endpoint: '198.51.100.3:51820',
      });
      const grandchild = await createAccount(api, t.admin.token, { parentScope: child.id });
      const foreign = await createGateway(api, u.admin.token, '_', { endpoint: '198.51.100.4:51820' });

      const locations = async (token: string, scope: string) => {
        const res = await request(api.url).get(`/v1/${scope}/vpn/locations`).set(bearer(token)).expect(200);
        return res.body.items as Array<Record<string, unknown>>;
      };
      const fromGrandchild = await locations(t.admin.token, grandchild.id);
      expect(fromGrandchild.map((g) => g.id)).toEqual([childGateway.id, ownFirst.id, ownSecond.id]);
      expect(fromGrandchild[0]).toEqual({
        id: childGateway.id,
        name: childGateway.name,
        endpoint: '198.51.100.3:51820',
        scopeId: child.id,
        connection: 'NEVER_CONNECTED',
      });
      expect((await locations(t.admin.token, child.id)).map((g) => g.id)).toEqual([
        childGateway.id,
        ownFirst.id,
        ownSecond.id,
      ]);
      // The account's own: not its child's, not another tenant's.
      expect((await locations(t.admin.token, '_')).map((g) => g.id)).toEqual([ownFirst.id, ownSecond.id]);
      expect((await locations(u.admin.token, '_')).map((g) => g.id)).toEqual([foreign.id]);
      const viewer = await createUser(api, t.admin.token, '_', 'viewer');
      expect((await locations(viewer.token, '_')).map((g) => g.id)).toEqual([ownFirst.id, ownSecond.id]);
      expectError(
        await request(api.url).get(`/v1/${t.account.id}/vpn/locations`).set(bearer(u.admin.token)),
        403,
        'FORBIDDEN',
      );
    });
  });
});

describe("engineers' sessions with a small client pool (VPN_CLIENT_POOL=10.208.0.0/29)", () => {
  const POOL = '10.208.0.0/29';
  let api: TestApi;
  let rootToken: string;
  const closer = new Closer();

  beforeAll(async () => {
    api = await startTestApi({ VPN_CLIENT_POOL: POOL });
    rootToken = await login(api);
  });

  afterAll(async () => {
    await closer.closeAll();
    await api?.stop();
  });

  it('should answer 507 INSUFFICIENT_STORAGE once every client address is taken, and reuse a freed one', async () => {
    const s = await startSite(api, rootToken, closer);
    expect(s.fake.addresses).toEqual(addressesFor([s.t.account.vpnSubnet], POOL));
    // .1 is the gateways' own address, .7 the broadcast address: .2 to .6 are for clients.
    const sessions: SessionCreatedBody[] = [];
    for (let i = 0; i < 5; i++)
      sessions.push(await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey()));
    expect(sessions.map((x) => x.tunnelAddress).sort()).toEqual([
      '10.208.0.2',
      '10.208.0.3',
      '10.208.0.4',
      '10.208.0.5',
      '10.208.0.6',
    ]);

    const from = s.fake.requests.length;
    const full = await openSession(api, s.t.admin.token, '_', s.device.id, { publicKey: wireGuardKey() });
    expectError(full, 507, 'INSUFFICIENT_STORAGE');
    expect(full.body.details).toContain('VPN_CLIENT_POOL');
    expect(s.fake.requests.slice(from)).toEqual([]);
    expect(await listSessions(api, s.t.admin.token, '_', { active: true })).toHaveLength(5);
    expect(await listSessions(api, s.t.admin.token, '_')).toHaveLength(5);
    expect(clientPeers(s.fake)).toHaveLength(5);

    const freed = sessions.find((x) => x.tunnelAddress === '10.208.0.4');
    await closeSession(api, s.t.admin.token, '_', s.device.id, freed?.id ?? '').expect(204);
    const reused = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());
    expect(reused.tunnelAddress).toBe('10.208.0.4');
    expect(clientPeers(s.fake)).toHaveLength(5);
  });
});

describe("engineers' session liveness (VPN_SESSION_PING_INTERVAL_SECONDS=1, VPN_SWEEP_INTERVAL_MS=200, VPN_PEER_GRACE_SECONDS=1)", () => {
  const INTERVAL = 1;
  let api: TestApi;
  let rootToken: string;
  const closer = new Closer();

  beforeAll(async () => {
    api = await startTestApi({
      VPN_SESSION_PING_INTERVAL_SECONDS: String(INTERVAL),
      VPN_SWEEP_INTERVAL_MS: '200',
      VPN_PEER_GRACE_SECONDS: '1',
    });
    rootToken = await login(api);
  });

  afterEach(async () => {
    await closer.closeAll();
  });

  afterAll(async () => {
    await closer.closeAll();
    await api?.stop();
  });

  const site = (): Promise<Site> => startSite(api, rootToken, closer);

  it('should end a session nobody pings after 3 ping intervals (expired) and take its peer off the gateway', async () => {
    const s = await site();
    const clientKey = wireGuardKey();
    const session = await openOk(api, s.t.admin.token, '_', s.device.id, clientKey);
    expect(session.pingInterval).toBe(INTERVAL);
    expect(s.fake.peers.has(clientKey)).toBe(true);

    const ended = await eventually(async () => {
      const row = await getSession(api, s.t.admin.token, '_', session.id);
      expect(row.endReason).toBe('expired');
      return row;
    }, 15_000);
    expect(
      new Date(ended.endedOn as string).getTime() - new Date(ended.lastSeenOn).getTime(),
    ).toBeGreaterThan(expiryAfter(INTERVAL));
    await eventually(() => expect(s.fake.peers.has(clientKey)).toBe(false));
    expect([...s.fake.peers.keys()]).toEqual([s.key]);
    expectError(
      await pingSession(api, '_', s.device.id, session.id, { pingToken: session.pingToken }),
      404,
      'NOT_FOUND',
    );
  });

  it('should keep a session alive without pings while the gateway reports handshakes of its client', async () => {
    const s = await site();
    const talkingKey = wireGuardKey();
    const talking = await openOk(api, s.t.admin.token, '_', s.device.id, talkingKey);
    const silent = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());

    let reporting = true;
    const reporter = (async () => {
      while (reporting) {
        await s.fake.reportPeers([
          // Handshakes only, no traffic: nothing but the handshake may keep the session.
          { publicKey: talkingKey, lastHandshakeOn: Date.now(), rxBytes: 0, txBytes: 0 },
        ]);
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    })();
    let silentEnded: SessionBody;
    try {
      // The silent one (opened after the talking one) expires; the talking one outlives it.
      silentEnded = await eventually(async () => {
        const row = await getSession(api, s.t.admin.token, '_', silent.id);
        expect(row.endReason).toBe('expired');
        return row;
      }, 15_000);
      const alive = await getSession(api, s.t.admin.token, '_', talking.id);
      expect(alive.endedOn).toBeNull();
      expect(
        new Date(silentEnded.endedOn as string).getTime() - new Date(alive.startedOn).getTime(),
      ).toBeGreaterThan(expiryAfter(INTERVAL));
      // No ping was recorded: the handshakes alone kept it.
      expect(alive.lastSeenOn).toBe(alive.startedOn);
      expect(alive).toMatchObject({ rxBytes: 0, txBytes: 0 });
      expect(s.fake.peers.has(talkingKey)).toBe(true);
    } finally {
      reporting = false;
      await reporter;
    }

    // Once the handshakes stop, it expires too.
    const ended = await eventually(async () => {
      const row = await getSession(api, s.t.admin.token, '_', talking.id);
      expect(row.endReason).toBe('expired');
      return row;
    }, 15_000);
    expect(new Date(ended.endedOn as string).getTime()).toBeGreaterThan(
      new Date(silentEnded.endedOn as string).getTime(),
    );
    await eventually(() => expect(s.fake.peers.has(talkingKey)).toBe(false));
  });

  it('should keep a session alive without pings or handshakes while the gateway reports packets from its client', async () => {
    const s = await site();
    const talkingKey = wireGuardKey();
    const talking = await openOk(api, s.t.admin.token, '_', s.device.id, talkingKey);
    const silent = await openOk(api, s.t.admin.token, '_', s.device.id, wireGuardKey());

    let reporting = true;
    let rx = 0;
    const reporter = (async () => {
      while (reporting) {
        // Keepalive packets only: the counters grow, the handshake stays the first one.
        rx += 32;
        await s.fake.reportPeers([{ publicKey: talkingKey, lastHandshakeOn: null, rxBytes: rx, txBytes: 0 }]);
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
    })();
    try {
      await eventually(async () => {
        expect((await getSession(api, s.t.admin.token, '_', silent.id)).endReason).toBe('expired');
      }, 15_000);
      const alive = await getSession(api, s.t.admin.token, '_', talking.id);
      expect(alive.endedOn).toBeNull();
      // The packets moved its last proof of life forward.
      expect(new Date(alive.lastSeenOn).getTime()).toBeGreaterThan(new Date(alive.startedOn).getTime());
    } finally {
      reporting = false;
      await reporter;
    }
    await eventually(async () => {
      expect((await getSession(api, s.t.admin.token, '_', talking.id)).endReason).toBe('expired');
    }, 15_000);
  });

  it("should end a device's sessions when its tunnel leaves the gateway after the grace period (device_unreachable)", async () => {
    const s = await site();
    const clientKey = wireGuardKey();
    const session = await openOk(api, s.t.admin.token, '_', s.device.id, clientKey);
    await s.sim.crash();
    await pingSession(api, '_', s.device.id, session.id, { pingToken: session.pingToken }).expect(200);
    const ended = await eventually(async () => {
      const row = await getSession(api, s.t.admin.token, '_', session.id);
      expect(row.endedOn).not.toBeNull();
      return row;
    }, 10_000);
    expect(ended.endReason).toBe('device_unreachable');
    await eventually(() => expect(s.fake.peers.size).toBe(0));
  });

  it('should end a session when the user who opened it is disabled (principal_revoked), by the sweep', async () => {
    const s = await site();
    const operator = await createUser(api, s.t.admin.token, '_', 'operator');
    const clientKey = wireGuardKey();
    const session = await openOk(api, operator.token, '_', s.device.id, clientKey);
    await pingSession(api, '_', s.device.id, session.id, { pingToken: session.pingToken }).expect(200);
    await request(api.url)
      .put(`/v1/_/users/${operator.id}`)
      .set(bearer(s.t.admin.token))
      .send({ enabled: false, optlock: operator.optlock })
      .expect(200);

    const ended = await eventually(async () => {
      const row = await getSession(api, s.t.admin.token, '_', session.id);
      expect(row.endedOn).not.toBeNull();
      return row;
    }, 10_000);
    expect(ended).toMatchObject({ userId: operator.id, endReason: 'principal_revoked' });
    await eventually(() => expect(s.fake.peers.has(clientKey)).toBe(false));
    expectError(
      await pingSession(api, '_', s.device.id, session.id, { pingToken: session.pingToken }),
      404,
      'NOT_FOUND',
    );
  });

  it('should end a session when the user who opened it is deleted (principal_revoked)', async () => {
    const s = await site();
    const operator = await createUser(api, s.t.admin.token, '_', 'operator');
    const clientKey = wireGuardKey();
    const session = await openOk(api, operator.token, '_', s.device.id, clientKey);
    await pingSession(api, '_', s.device.id, session.id, { pingToken: session.pingToken }).expect(200);
    await request(api.url).delete(`/v1/_/users/${operator.id}`).set(bearer(s.t.admin.token)).expect(204);

    const ended = await eventually(async () => {
      const row = await getSession(api, s.t.admin.token, '_', session.id);
      expect(row.endedOn).not.toBeNull();
      return row;
    }, 10_000);
    // The audit trail keeps who it was.
    expect(ended).toMatchObject({ userId: operator.id, endReason: 'principal_revoked' });
    await eventually(() => expect(s.fake.peers.has(clientKey)).toBe(false));
  });

  it('should end a session when the API key that opened it is deleted (principal_revoked)', async () => {
    const s = await site();
    const key = await createApiKey(api, s.t.admin.token, '_', 'operator');
    const keyToken = await loginApiKey(api, key.apiKey);
    const clientKey = wireGuardKey();
    const session = await openOk(api, keyToken, '_', s.device.id, clientKey);
    await pingSession(api, '_', s.device.id, session.id, { pingToken: session.pingToken }).expect(200);
    await request(api.url).delete(`/v1/_/apikeys/${key.id}`).set(bearer(s.t.admin.token)).expect(204);

    const ended = await eventually(async () => {
      const row = await getSession(api, s.t.admin.token, '_', session.id);
      expect(row.endedOn).not.toBeNull();
      return row;
    }, 10_000);
    expect(ended).toMatchObject({ userId: null, apiKeyId: key.id, endReason: 'principal_revoked' });
    await eventually(() => expect(s.fake.peers.has(clientKey)).toBe(false));
  });
});
