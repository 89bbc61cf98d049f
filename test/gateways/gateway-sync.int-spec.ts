import { randomUUID } from 'node:crypto';
import { connectAsync, type MqttClient } from 'mqtt';
import request from 'supertest';
import {
  buildGatewayReply,
  encodeKuraPayload,
  firstHostAddress,
  gatewayCommandSubscription,
  deviceCommandSubscription,
  GATEWAY_APP_ID,
  ResponseCodes,
  StatusCodes,
  Topics,
  VPN_APP_ID,
  type GatewayPeer,
} from '@app/protocol';
import { GatewayPeerRepository } from '../../apps/api/src/gateways/gateway-peer.repository';
import { PeerSweeper } from '../../apps/api/src/gateways/peer-sweeper';
import { KuraRequestClient } from '../../apps/api/src/mqtt/kura-request.client';
import { eventually } from '../support/eventually';
import {
  closed,
  getDevice,
  getVpnStatus,
  subscribeGranted,
  usesExternalBroker,
  type DeviceBody,
  type VpnStatusBody,
} from '../support/device-factories';
import { createAccount, createTenant, type AccountBody, type Tenant } from '../support/factories';
import { FakeGateway, wireGuardKey, type GatewayCredentials } from '../support/fake-gateway';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';
import {
  CLIENT_POOL,
  Closer,
  createDeviceIn,
  createGateway,
  firstHost,
  getGateway,
  issueGatewayCredentials,
  SimDevice,
  startGateway,
  type GatewayBody,
} from './gateway-fixtures';

const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
/** Fresh-handshake window of the API under test (VPN_HANDSHAKE_FRESH_SECONDS). */
const FRESH_SECONDS = 60;

/** The peer a gateway must hold for `device` of `account`. */
const devicePeer = (device: DeviceBody, account: AccountBody, publicKey: string): GatewayPeer => ({
  publicKey,
  allowedIps: [`${device.tunnelAddress}/32`],
  kind: 'device',
  accountId: account.id,
  allow: [],
});

/** A gateway's interface addresses: the first host of each account subnet it carries devices of, and of the client pool. */
const addressesFor = (...subnets: string[]): string[] => [
  ...[...subnets].sort().map(firstHostAddress),
  firstHostAddress(CLIENT_POOL),
];

describe('gateway desired state (FakeGateway, simulated devices)', () => {
  let api: TestApi;
  let rootToken: string;
  const closer = new Closer();

  beforeAll(async () => {
    api = await startTestApi({ VPN_HANDSHAKE_FRESH_SECONDS: String(FRESH_SECONDS) });
    rootToken = await login(api);
  });

  afterEach(async () => {
    await closer.closeAll();
  });

  afterAll(async () => {
    await closer.closeAll();
    await api?.stop();
  });

  const vpn = (token: string, scope: string, deviceId: string, command: string, timeout = 10_000) =>
    request(api.url)
      .post(`/v1/${scope}/devices/${deviceId}/vpn/${command}`)
      .query({ timeout })
      .set(bearer(token));

  /** A tenant with its own gateway (served by a FakeGateway, first full sync done). */
  const tenantWithGateway = async (): Promise<{ t: Tenant; gateway: GatewayBody; fake: FakeGateway }> => {
    const t = await createTenant(api, rootToken);
    const { gateway, fake } = await startGateway(api, t.admin.token);
    closer.add(fake);
    return { t, gateway, fake };
  };

  /** A device of `account` (scope `scope`) with a WireGuard key, connected and born. */
  const keyedDevice = async (
    token: string,
    account: AccountBody,
    opts: { scope?: string; publicKey?: string | null; gatewayId?: string } = {},
  ): Promise<{ device: DeviceBody; sim: SimDevice }> => {
    const scope = opts.scope ?? '_';
    const device = await createDeviceIn(
      api,
      token,
      scope,
      opts.gatewayId ? { gatewayId: opts.gatewayId } : {},
    );
    const sim = closer.add(
      await SimDevice.start(api, token, scope, device, account.name, { publicKey: opts.publicKey }),
    );
    return { device, sim };
  };

  describe('full sync', () => {
    it("should send a full sync (one last chunk, the current serial) after the gateway's BIRTH", async () => {
      const t = await createTenant(api, rootToken);
      const gateway = await createGateway(api, t.admin.token);
      const creds = await issueGatewayCredentials(api, t.admin.token, '_', gateway.id);
      const fake = closer.add(await FakeGateway.start(api.mqttUrl, creds));
      const sync = await fake.waitForFullSync();
      expect(fake.requests).toEqual([sync]);
      expect(sync.sync).toEqual({
        serial: 0,
        chunk: 0,
        last: true,
        addresses: addressesFor(),
        peers: [],
      });
      expect(sync.reply).toMatchObject({ code: 200, serial: 0 });
      expect(await getGateway(api, t.admin.token, '_', gateway.id)).toMatchObject({
        connection: 'CONNECTED',
        publicKey: fake.publicKey,
        peers: 0,
      });
    });

    it('should send a full sync with every live peer when the gateway restarts (new BIRTH)', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const one = await keyedDevice(t.admin.token, t.account);
      const two = await keyedDevice(t.admin.token, t.account);
      const gone = await keyedDevice(t.admin.token, t.account);
      for (const d of [one, two, gone]) await vpn(t.admin.token, '_', d.device.id, '_connect').expect(200);
      await vpn(t.admin.token, '_', gone.device.id, '_disconnect').expect(200);
      const serial = fake.serial;

      await fake.crash();
      await eventually(async () =>
        expect((await getGateway(api, t.admin.token, '_', gateway.id)).connection).toBe('MISSING'),
      );
      const from = fake.requests.length;
      await fake.connect(); // a new process: no peers, serial 0
      const sync = await fake.waitForFullSync({ from });
      expect(fake.requests.slice(from)).toEqual([sync]);
      expect(sync.sync?.serial).toBe(serial);
      expect(sync.sync?.chunk).toBe(0);
      expect(sync.sync?.addresses).toEqual(addressesFor(t.account.vpnSubnet));
      const expected = [one, two].map((d) => devicePeer(d.device, t.account, d.sim.publicKey as string));
      expect(sync.sync?.peers).toEqual(expect.arrayContaining(expected));
      expect(sync.sync?.peers).toHaveLength(2);
      expect([...fake.peers.keys()].sort()).toEqual(expected.map((p) => p.publicKey).sort());
      expect(fake.serial).toBe(serial);
      expect(await getGateway(api, t.admin.token, '_', gateway.id)).toMatchObject({
        connection: 'CONNECTED',
        peers: 2,
      });
    });

    it('should send a full sync of more than 500 peers in chunks of one serial', async () => {
      const t = await createTenant(api, rootToken);
      const gateway = await createGateway(api, t.admin.token);
      const creds = await issueGatewayCredentials(api, t.admin.token, '_', gateway.id);
      // The desired state of 501 devices, put in place while the gateway was never connected.
      const devices: DeviceBody[] = [];
      for (let i = 0; i < 501; i += 50) {
        const batch = Array.from({ length: Math.min(50, 501 - i) }, () => createDeviceIn(api, t.admin.token));
        devices.push(...(await Promise.all(batch)));
      }
      const peers = api.app.get(GatewayPeerRepository);
      const keys = new Map<string, string>();
      for (const d of devices) {
        const key = wireGuardKey();
        keys.set(d.id, key);
        await peers.upsertDevicePeer(gateway.id, {
          deviceId: d.id,
          scopeId: t.account.id,
          publicKey: key,
          tunnelIp: d.tunnelAddress,
        });
      }

      const fake = closer.add(await FakeGateway.start(api.mqttUrl, creds));
      await fake.waitForFullSync({ timeoutMs: 15_000 });
      const chunks = fake.requests.map((r) => r.sync);
      expect(chunks.map((c) => [c?.serial, c?.chunk, c?.last, c?.peers.length])).toEqual([
        [501, 0, false, 500],
        [501, 1, true, 1],
      ]);
      expect(chunks[0]?.addresses).toEqual(addressesFor(t.account.vpnSubnet));
      expect(chunks[1]?.addresses).toEqual(addressesFor(t.account.vpnSubnet));
      expect(fake.requests.map((r) => r.reply)).toEqual([
        { code: 200, serial: 0 },
        { code: 200, serial: 501 },
      ]);
      expect(fake.serial).toBe(501);
      expect(fake.peers.size).toBe(501);
      for (const d of devices) {
        expect(fake.peers.get(keys.get(d.id) as string)).toEqual(
          devicePeer(d, t.account, keys.get(d.id) as string),
        );
      }
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(501);
    });

    it('should leave out of the next full sync a device deleted while its gateway was away', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const kept = await keyedDevice(t.admin.token, t.account);
      const deleted = await keyedDevice(t.admin.token, t.account);
      for (const d of [kept, deleted]) await vpn(t.admin.token, '_', d.device.id, '_connect').expect(200);
      await fake.disconnect();
      await eventually(async () =>
        expect((await getGateway(api, t.admin.token, '_', gateway.id)).connection).toBe('DISCONNECTED'),
      );
      await request(api.url)
        .delete(`/v1/_/devices/${deleted.device.id}`)
        .set(bearer(t.admin.token))
        .expect(204);

      const from = fake.requests.length;
      await fake.connect({ keepState: true }); // the same process, reconnecting with its old state
      const sync = await fake.waitForFullSync({ from });
      expect(fake.requests.slice(from)).toEqual([sync]);
      expect(sync.sync?.peers).toEqual([devicePeer(kept.device, t.account, kept.sim.publicKey as string)]);
      expect([...fake.peers.keys()]).toEqual([kept.sim.publicKey]);
    });

    it('should answer a change set the gateway refuses with 409 (serial gap) with a full sync', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const from = fake.requests.length;
      fake.answerWith(409, { command: 'apply' });
      let syncedAtConnect = false;
      sim.onCommand = (c) => {
        if (c.command === 'connect') syncedAtConnect = fake.peers.has(sim.publicKey as string);
      };
      const res = await vpn(t.admin.token, '_', device.id, '_connect');
      expect(res.status).toBe(200);
      const [refused, sync, ...rest] = fake.requests.slice(from);
      expect(rest).toEqual([]);
      expect(refused).toMatchObject({ command: 'apply', reply: { code: 409, serial: 0 } });
      expect(sync.sync).toEqual({
        serial: refused.apply?.serial,
        chunk: 0,
        last: true,
        addresses: addressesFor(t.account.vpnSubnet),
        peers: [devicePeer(device, t.account, sim.publicKey as string)],
      });
      expect(sync.reply).toMatchObject({ code: 200, serial: refused.apply?.serial });
      expect(syncedAtConnect).toBe(true);
      expect(res.body.tunnel).toMatchObject({ gatewayId: gateway.id });
    });
  });

  describe('_connect and _disconnect of a keyed device', () => {
    it("should put the device's peer on the gateway before the device gets its profile", async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const key = sim.publicKey as string;
      const from = fake.requests.length;
      const serial = fake.serial;
      let heldAtConnect: GatewayPeer | undefined;
      sim.onCommand = (c) => {
        if (c.command === 'connect') heldAtConnect = fake.peers.get(key);
      };

      const res = await vpn(t.admin.token, '_', device.id, '_connect');
      expect(res.status).toBe(200);

      const requests = fake.requests.slice(from);
      expect(requests).toHaveLength(1);
      const [apply] = requests;
      expect(apply.command).toBe('apply');
      expect(apply.apply).toEqual({
        serial: serial + 1,
        previous: serial,
        addresses: addressesFor(t.account.vpnSubnet),
        upsert: [devicePeer(device, t.account, key)],
        remove: [],
      });
      expect(apply.reply).toEqual({ code: 200, serial: serial + 1 });

      expect(sim.commands.map((c) => c.command)).toEqual(['connect']);
      const [connect] = sim.commands;
      expect(apply.receivedAt).toBeLessThan(connect.receivedAt);
      expect(heldAtConnect).toEqual(devicePeer(device, t.account, key));

      const prefix = t.account.vpnSubnet.split('/')[1];
      expect(connect.profile).toEqual({
        type: 'wireguard',
        tunnelAddress: `${device.tunnelAddress}/${prefix}`,
        serverEndpoint: gateway.endpoint,
        serverPublicKey: fake.publicKey,
        gatewayAddress: firstHost(t.account.vpnSubnet),
        allowedIps: [t.account.vpnSubnet, CLIENT_POOL],
        dns: [],
        keepalive: expect.any(Number),
      });

      const tunnel = {
        gatewayId: gateway.id,
        gatewayAddress: firstHost(t.account.vpnSubnet),
        lastHandshakeOn: null,
        rxBytes: 0,
        txBytes: 0,
      };
      expect(res.body).toEqual({
        connected: true,
        ipAddress: device.tunnelAddress,
        status: 'connected',
        statusCode: StatusCodes.ACTIVE,
        deviceConnection: 'CONNECTED',
        reportedOn: expect.stringMatching(ISO_DATE),
        tunnel,
      });
      expect(await getVpnStatus(api, t.admin.token, '_', device.id)).toEqual(res.body);
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(1);
    });

    it('should connect several devices at once through one gateway, in one unbroken chain of serials', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const devices = await Promise.all(
        Array.from({ length: 6 }, () => keyedDevice(t.admin.token, t.account)),
      );
      const from = fake.requests.length;
      const serial = fake.serial;
      const results = await Promise.all(devices.map((d) => vpn(t.admin.token, '_', d.device.id, '_connect')));
      expect(results.map((r) => r.status)).toEqual(devices.map(() => 200));
      const requests = fake.requests.slice(from);
      expect(requests.every((r) => r.command === 'apply' && r.reply?.code === 200)).toBe(true);
      let held = serial;
      for (const r of requests) {
        expect(r.apply?.previous).toBe(held);
        held = r.apply?.serial as number;
      }
      expect(held).toBe(serial + devices.length);
      expect([...fake.peers.keys()].sort()).toEqual(devices.map((d) => d.sim.publicKey).sort());
      for (const d of devices) {
        expect(fake.peers.get(d.sim.publicKey as string)).toEqual(
          devicePeer(d.device, t.account, d.sim.publicKey as string),
        );
        expect(d.sim.commands).toHaveLength(1);
      }
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(devices.length);
    });

    it('should send no change set when an already connected device connects again', async () => {
      const { t, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      await vpn(t.admin.token, '_', device.id, '_connect').expect(200);
      const from = fake.requests.length;
      const res = await vpn(t.admin.token, '_', device.id, '_connect').expect(200);
      expect(fake.requests.slice(from)).toEqual([]);
      expect(sim.commands.map((c) => c.command)).toEqual(['connect', 'connect']);
      expect(res.body.tunnel).not.toBeNull();
    });

    it("should take the device's peer off the gateway on _disconnect", async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const key = sim.publicKey as string;
      await vpn(t.admin.token, '_', device.id, '_connect').expect(200);
      const from = fake.requests.length;
      const serial = fake.serial;

      const res = await vpn(t.admin.token, '_', device.id, '_disconnect');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ connected: false, status: 'idle', tunnel: null });

      const apply = await fake.waitForRequest((r) => r.command === 'apply', { from });
      expect(apply.apply).toEqual({
        serial: serial + 1,
        previous: serial,
        addresses: addressesFor(),
        upsert: [],
        remove: [key],
      });
      expect(fake.peers.has(key)).toBe(false);
      expect(sim.commands.map((c) => c.command)).toEqual(['connect', 'disconnect']);
      expect((await getVpnStatus(api, t.admin.token, '_', device.id)).tunnel).toBeNull();
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(0);
    });

    it('should refuse a keyed device without a gateway on its account path with 409 NO_GATEWAY, sending nothing', async () => {
      const t = await createTenant(api, rootToken);
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const res = await vpn(t.admin.token, '_', device.id, '_connect');
      expectError(res, 409, 'NO_GATEWAY');
      // Actionable: it says how to get a gateway.
      expect(res.body.details).toContain('/gateways');
      expect(res.body.details).toMatch(/gatewayId/);
      await sim.flush();
      expect(sim.commands).toEqual([]);
      expect((await getVpnStatus(api, t.admin.token, '_', device.id)).tunnel).toBeNull();
    });

    it.each([
      ['DISCONNECTED', 'DC', (f: FakeGateway) => f.disconnect()],
      ['MISSING', 'LWT', (f: FakeGateway) => f.crash()],
    ])(
      'should answer 503 GATEWAY_UNAVAILABLE at once when the gateway is %s (%s)',
      async (state, _how, stop) => {
        const { t, gateway, fake } = await tenantWithGateway();
        const { device, sim } = await keyedDevice(t.admin.token, t.account);
        await stop(fake);
        await eventually(async () =>
          expect((await getGateway(api, t.admin.token, '_', gateway.id)).connection).toBe(state),
        );
        const started = Date.now();
        const res = await vpn(t.admin.token, '_', device.id, '_connect', 30_000);
        expectError(res, 503, 'GATEWAY_UNAVAILABLE');
        expect(Date.now() - started).toBeLessThan(5000);
        await sim.flush();
        expect(sim.commands).toEqual([]);
        expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(0);
        expect((await getVpnStatus(api, t.admin.token, '_', device.id)).tunnel).toBeNull();
      },
    );

    it('should answer 504 GATEWAY_TIMEOUT when the gateway does not acknowledge, and take the peer out again', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const key = sim.publicKey as string;
      const from = fake.requests.length;
      fake.hold();

      const res = await vpn(t.admin.token, '_', device.id, '_connect', 2000);
      expectError(res, 504, 'GATEWAY_TIMEOUT');
      await sim.flush();
      expect(sim.commands).toEqual([]);
      // The desired state no longer has the peer, even though the gateway has not answered yet.
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(0);
      expect((await getVpnStatus(api, t.admin.token, '_', device.id)).tunnel).toBeNull();
      const [added] = fake.requests.slice(from);
      expect(added.apply?.upsert.map((p) => p.publicKey)).toEqual([key]);
      expect(added.reply).toBeUndefined();

      // The gateway answers at last: the next change set removes the peer again.
      fake.release();
      const removal = await fake.waitForRequest(
        (r) => r.apply?.remove.includes(key) === true && r.reply?.code === 200,
        { from },
      );
      expect(removal.apply?.upsert).toEqual([]);
      expect(fake.peers.has(key)).toBe(false);
      const ops = await request(api.url)
        .get(`/v1/_/devices/${device.id}/operations`)
        .set(bearer(t.admin.token))
        .expect(200);
      expect(ops.body.items[0]).toMatchObject({ command: 'connect', status: 'TIMEOUT' });
    });

    it('should answer 502 and remove the peer when the device fails its connect', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const key = sim.publicKey as string;
      const from = fake.requests.length;
      sim.respond = (c) => sim.failure(`cannot bring ${c.command} up: wg0 exists`);

      const res = await vpn(t.admin.token, '_', device.id, '_connect');
      expectError(res, 502, 'DEVICE_ERROR');
      expect(res.body.details).toContain('wg0 exists');
      expect(sim.commands.map((c) => c.command)).toEqual(['connect']);

      const removal = await fake.waitForRequest(
        (r) => r.apply?.remove.includes(key) === true && r.reply?.code === 200,
        { from },
      );
      expect(removal.apply?.upsert).toEqual([]);
      expect(fake.peers.has(key)).toBe(false);
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(0);
      expect(await getVpnStatus(api, t.admin.token, '_', device.id)).toMatchObject({
        connected: false,
        status: 'error',
        statusCode: StatusCodes.DEVICE_VPN_FAILED,
        tunnel: null,
      });
    });

    it('should refuse a second device announcing the same key with 409 ENTRY_EXISTS, leaving the first alone', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const key = wireGuardKey();
      const first = await keyedDevice(t.admin.token, t.account, { publicKey: key });
      const second = await keyedDevice(t.admin.token, t.account, { publicKey: key });
      await vpn(t.admin.token, '_', first.device.id, '_connect').expect(200);
      const from = fake.requests.length;

      const res = await vpn(t.admin.token, '_', second.device.id, '_connect');
      expectError(res, 409, 'ENTRY_EXISTS');
      await second.sim.flush();
      expect(second.sim.commands).toEqual([]);
      expect(fake.requests.slice(from)).toEqual([]);
      expect(fake.peers.get(key)).toEqual(devicePeer(first.device, t.account, key));
      expect((await getVpnStatus(api, t.admin.token, '_', first.device.id)).tunnel).toMatchObject({
        gatewayId: gateway.id,
      });
      expect((await getVpnStatus(api, t.admin.token, '_', second.device.id)).tunnel).toBeNull();
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(1);
    });

    it("should replace the device's peer when its BIRTH announces a new key", async () => {
      const { t, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const oldKey = sim.publicKey as string;
      await vpn(t.admin.token, '_', device.id, '_connect').expect(200);
      const from = fake.requests.length;
      const serial = fake.serial;

      const newKey = wireGuardKey();
      await sim.birth(newKey);
      const apply = await fake.waitForRequest((r) => r.command === 'apply' && r.reply?.code === 200, {
        from,
      });
      expect(apply.apply).toEqual({
        serial: expect.any(Number),
        previous: serial,
        addresses: addressesFor(t.account.vpnSubnet),
        upsert: [devicePeer(device, t.account, newKey)],
        remove: [oldKey],
      });
      expect([...fake.peers.keys()]).toEqual([newKey]);
      expect((await getDevice(api, t.admin.token, '_', device.id)).vpnPublicKey).toBe(newKey);
      expect((await getVpnStatus(api, t.admin.token, '_', device.id)).tunnel).not.toBeNull();
    });

    it("should remove the device's peer when its BIRTH announces no key any more", async () => {
      const { t, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const key = sim.publicKey as string;
      await vpn(t.admin.token, '_', device.id, '_connect').expect(200);
      const from = fake.requests.length;
      await sim.birth(null);
      const apply = await fake.waitForRequest((r) => r.command === 'apply' && r.reply?.code === 200, {
        from,
      });
      expect(apply.apply).toMatchObject({ upsert: [], remove: [key] });
      expect(fake.peers.size).toBe(0);
    });
  });

  describe('edge cases of the tunnel', () => {
    it('should answer 503 GATEWAY_UNAVAILABLE when the gateway drops off while the connect waits for it', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const key = sim.publicKey as string;
      const from = fake.requests.length;
      fake.hold();
      const pending = vpn(t.admin.token, '_', device.id, '_connect', 30_000).then((r) => r);
      await fake.waitForRequest((r) => r.command === 'apply', { from });
      const started = Date.now();
      await fake.crash();
      const res = await pending;
      expectError(res, 503, 'GATEWAY_UNAVAILABLE');
      expect(Date.now() - started).toBeLessThan(5000);
      await sim.flush();
      expect(sim.commands).toEqual([]);
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(0);

      // The gateway comes back (a new process): its full sync does not have the peer.
      await eventually(async () =>
        expect((await getGateway(api, t.admin.token, '_', gateway.id)).connection).toBe('MISSING'),
      );
      const again = fake.requests.length;
      await fake.connect();
      const sync = await fake.waitForFullSync({ from: again });
      expect(sync.sync?.peers).toEqual([]);
      expect(fake.peers.has(key)).toBe(false);
    });

    it('should answer 504 GATEWAY_TIMEOUT, sending no profile, when the gateway refuses the change set (500)', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const key = sim.publicKey as string;
      const from = fake.requests.length;
      // Every apply is refused until the command's deadline has passed (the cloud retries a
      // refused change set whenever the gateway is kicked again), then the refusals stop.
      fake.answerWith(500, { command: 'apply', times: 1_000 });
      const res = await vpn(t.admin.token, '_', device.id, '_connect', 2000);
      fake.answerWith(500, { command: 'apply', times: 0 });
      expectError(res, 504, 'GATEWAY_TIMEOUT');
      expect(fake.requests[from]).toMatchObject({ command: 'apply', reply: { code: 500 } });
      await sim.flush();
      expect(sim.commands).toEqual([]);
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(0);
      // The gateway never held the peer, and ends up in step with the desired state without it.
      await fake.waitForRequest((r) => r.apply?.remove.includes(key) === true && r.reply?.code === 200, {
        from,
      });
      expect(fake.peers.has(key)).toBe(false);
    });

    it("should take the peer off the gateway when _disconnect finds the device's link down (409)", async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const key = sim.publicKey as string;
      await vpn(t.admin.token, '_', device.id, '_connect').expect(200);
      await sim.crash();
      await eventually(async () =>
        expect((await getDevice(api, t.admin.token, '_', device.id)).connectionStatus).toBe('MISSING'),
      );
      const from = fake.requests.length;
      expectError(await vpn(t.admin.token, '_', device.id, '_disconnect'), 409, 'DEVICE_NOT_CONNECTED');
      const removal = await fake.waitForRequest((r) => r.apply?.remove.includes(key) === true, { from });
      expect(removal.reply?.code).toBe(200);
      expect(fake.peers.has(key)).toBe(false);
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(0);
    });

    it("should keep a connected device's tunnel when a repeated _connect finds its gateway offline (503)", async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const key = sim.publicKey as string;
      await vpn(t.admin.token, '_', device.id, '_connect').expect(200);
      // The gateway's MQTT link drops; its WireGuard interface may well carry the tunnel on.
      await fake.disconnect();
      await eventually(async () =>
        expect((await getGateway(api, t.admin.token, '_', gateway.id)).connection).toBe('DISCONNECTED'),
      );
      expectError(await vpn(t.admin.token, '_', device.id, '_connect'), 503, 'GATEWAY_UNAVAILABLE');
      // A refused command changed nothing: the peer stays, and the gateway keeps it when it is back.
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(1);
      expect((await getVpnStatus(api, t.admin.token, '_', device.id)).tunnel).toMatchObject({
        gatewayId: gateway.id,
      });
      const from = fake.requests.length;
      await fake.connect({ keepState: true });
      const sync = await fake.waitForFullSync({ from });
      expect(sync.sync?.peers.map((p) => p.publicKey)).toEqual([key]);
    });

    it("should answer _disconnect at once when the device's gateway is offline, and remove the peer with its next sync", async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const key = sim.publicKey as string;
      await vpn(t.admin.token, '_', device.id, '_connect').expect(200);
      await fake.disconnect();
      await eventually(async () =>
        expect((await getGateway(api, t.admin.token, '_', gateway.id)).connection).toBe('DISCONNECTED'),
      );
      const started = Date.now();
      const res = await vpn(t.admin.token, '_', device.id, '_disconnect', 10_000);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ connected: false, tunnel: null });
      expect(sim.commands.map((c) => c.command)).toEqual(['connect', 'disconnect']);
      expect(Date.now() - started).toBeLessThan(5000);

      const from = fake.requests.length;
      await fake.connect({ keepState: true });
      const sync = await fake.waitForFullSync({ from });
      expect(sync.sync?.peers).toEqual([]);
      expect(fake.peers.has(key)).toBe(false);
    });

    it('should give a keyless device a profile without a gateway, and leave the gateway alone', async () => {
      const { t, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account, { publicKey: null });
      expect(sim.publicKey).toBeNull();
      const from = fake.requests.length;
      const res = await vpn(t.admin.token, '_', device.id, '_connect').expect(200);
      expect(fake.requests.slice(from)).toEqual([]);
      const profile = sim.commands[0].profile;
      expect(profile).toEqual({
        type: 'wireguard',
        tunnelAddress: `${device.tunnelAddress}/${t.account.vpnSubnet.split('/')[1]}`,
        allowedIps: [t.account.vpnSubnet, CLIENT_POOL],
        dns: [],
        keepalive: expect.any(Number),
      });
      expect(res.body).toMatchObject({ connected: true, tunnel: null });
    });

    it("should name the gateway's current endpoint in the profile after the endpoint changed", async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      await request(api.url)
        .patch(`/v1/_/gateways/${gateway.id}`)
        .set(bearer(t.admin.token))
        .send({
          endpoint: '198.51.100.9:4500',
          optlock: (await getGateway(api, t.admin.token, '_', gateway.id)).optlock,
        })
        .expect(200);
      await vpn(t.admin.token, '_', device.id, '_connect').expect(200);
      expect(sim.commands[0].profile).toMatchObject({
        serverEndpoint: '198.51.100.9:4500',
        serverPublicKey: fake.publicKey,
      });
    });

    it("should remove a device's peer when its BIRTH announces a key another peer of the gateway uses", async () => {
      const { t, fake } = await tenantWithGateway();
      const first = await keyedDevice(t.admin.token, t.account);
      const second = await keyedDevice(t.admin.token, t.account);
      for (const d of [first, second]) await vpn(t.admin.token, '_', d.device.id, '_connect').expect(200);
      const oldKey = second.sim.publicKey as string;
      const from = fake.requests.length;
      await second.sim.birth(first.sim.publicKey);
      const removal = await fake.waitForRequest(
        (r) => r.apply?.remove.includes(oldKey) === true && r.reply?.code === 200,
        { from },
      );
      expect(removal.apply?.upsert).toEqual([]);
      expect([...fake.peers.keys()]).toEqual([first.sim.publicKey]);
      expect(fake.peers.get(first.sim.publicKey as string)).toEqual(
        devicePeer(first.device, t.account, first.sim.publicKey as string),
      );
      expect((await getVpnStatus(api, t.admin.token, '_', second.device.id)).tunnel).toBeNull();
      expect((await getVpnStatus(api, t.admin.token, '_', first.device.id)).tunnel).not.toBeNull();
    });
  });

  describe('which gateway serves a device', () => {
    it("should serve a child account's device from the parent account's gateway", async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const child = await createAccount(api, t.admin.token);
      const { device, sim } = await keyedDevice(t.admin.token, child, { scope: child.id });
      const from = fake.requests.length;

      const res = await vpn(t.admin.token, child.id, device.id, '_connect');
      expect(res.status).toBe(200);
      const [apply] = fake.requests.slice(from);
      expect(apply.apply).toMatchObject({
        addresses: addressesFor(child.vpnSubnet),
        upsert: [devicePeer(device, child, sim.publicKey as string)],
        remove: [],
      });
      expect(sim.commands[0].profile).toMatchObject({
        serverEndpoint: gateway.endpoint,
        serverPublicKey: fake.publicKey,
        gatewayAddress: firstHost(child.vpnSubnet),
        allowedIps: [child.vpnSubnet, CLIENT_POOL],
      });
      expect(res.body.tunnel).toEqual({
        gatewayId: gateway.id,
        gatewayAddress: firstHost(child.vpnSubnet),
        lastHandshakeOn: null,
        rxBytes: 0,
        txBytes: 0,
      });
    });

    it('should carry the devices of an account and its child on one gateway, with an address in each subnet', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const child = await createAccount(api, t.admin.token);
      const own = await keyedDevice(t.admin.token, t.account);
      const sub = await keyedDevice(t.admin.token, child, { scope: child.id });
      await vpn(t.admin.token, '_', own.device.id, '_connect').expect(200);
      await vpn(t.admin.token, child.id, sub.device.id, '_connect').expect(200);
      const last = fake.applies().at(-1);
      const both = addressesFor(t.account.vpnSubnet, child.vpnSubnet);
      expect(last?.apply?.addresses).toEqual(expect.arrayContaining(both));
      expect(last?.apply?.addresses).toHaveLength(both.length);
      expect(fake.addresses).toEqual(last?.apply?.addresses);
      expect(fake.peers.get(own.sim.publicKey as string)?.accountId).toBe(t.account.id);
      expect(fake.peers.get(sub.sim.publicKey as string)?.accountId).toBe(child.id);
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(2);

      // The child's subnet address goes with its last device.
      await vpn(t.admin.token, child.id, sub.device.id, '_disconnect').expect(200);
      await eventually(() => expect(fake.addresses).toEqual(addressesFor(t.account.vpnSubnet)));
    });

    it("should prefer the nearest account's gateway, and a device's pinned gateway over both", async () => {
      const { t, gateway: parentGw, fake: parentFake } = await tenantWithGateway();
      const child = await createAccount(api, t.admin.token);
      const { gateway: childGw, fake: childFake } = await startGateway(api, t.admin.token, child.id);
      closer.add(childFake);
      const nearest = await keyedDevice(t.admin.token, child, { scope: child.id });
      const pinned = await keyedDevice(t.admin.token, child, { scope: child.id, gatewayId: parentGw.id });

      const a = await vpn(t.admin.token, child.id, nearest.device.id, '_connect').expect(200);
      const b = await vpn(t.admin.token, child.id, pinned.device.id, '_connect').expect(200);
      expect(a.body.tunnel.gatewayId).toBe(childGw.id);
      expect(b.body.tunnel.gatewayId).toBe(parentGw.id);
      expect([...childFake.peers.keys()]).toEqual([nearest.sim.publicKey]);
      expect([...parentFake.peers.keys()]).toEqual([pinned.sim.publicKey]);
      expect(nearest.sim.commands[0].profile?.serverPublicKey).toBe(childFake.publicKey);
      expect(pinned.sim.commands[0].profile?.serverPublicKey).toBe(parentFake.publicKey);
      expect(pinned.sim.commands[0].profile?.serverEndpoint).toBe(parentGw.endpoint);
    });

    it("should move the peer to the new gateway when a connected device's pin changes and it connects again", async () => {
      const { t, gateway: parentGw, fake: parentFake } = await tenantWithGateway();
      const child = await createAccount(api, t.admin.token);
      const { fake: childFake } = await startGateway(api, t.admin.token, child.id);
      closer.add(childFake);
      const { device, sim } = await keyedDevice(t.admin.token, child, { scope: child.id });
      const key = sim.publicKey as string;
      await vpn(t.admin.token, child.id, device.id, '_connect').expect(200);
      expect(childFake.peers.has(key)).toBe(true);

      const current = await getDevice(api, t.admin.token, child.id, device.id);
      await request(api.url)
        .put(`/v1/${child.id}/devices/${device.id}`)
        .set(bearer(t.admin.token))
        .send({ gatewayId: parentGw.id, optlock: current.optlock })
        .expect(200);
      const res = await vpn(t.admin.token, child.id, device.id, '_connect').expect(200);
      expect(res.body.tunnel.gatewayId).toBe(parentGw.id);
      expect(parentFake.peers.has(key)).toBe(true);
      await eventually(() => expect(childFake.peers.has(key)).toBe(false));
    });
  });

  describe('peer reports and the truthful status', () => {
    it('should show the handshake and traffic the gateway reports', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const key = sim.publicKey as string;
      await vpn(t.admin.token, '_', device.id, '_connect').expect(200);

      const handshake = Date.now() - 7_000;
      await fake.reportPeers([
        { publicKey: key, lastHandshakeOn: handshake, rxBytes: 123_456, txBytes: 7_890 },
        // A key the gateway does not carry is ignored.
        { publicKey: wireGuardKey(), lastHandshakeOn: handshake, rxBytes: 1, txBytes: 1 },
      ]);
      const expected = {
        gatewayId: gateway.id,
        gatewayAddress: firstHost(t.account.vpnSubnet),
        lastHandshakeOn: new Date(handshake).toISOString(),
        rxBytes: 123_456,
        txBytes: 7_890,
      };
      await eventually(async () =>
        expect((await getVpnStatus(api, t.admin.token, '_', device.id)).tunnel).toEqual(expected),
      );

      // A later report without a handshake keeps the last one, and updates the counters.
      await fake.reportPeers([{ publicKey: key, lastHandshakeOn: null, rxBytes: 200_000, txBytes: 9_000 }]);
      await eventually(async () =>
        expect((await getVpnStatus(api, t.admin.token, '_', device.id)).tunnel).toEqual({
          ...expected,
          rxBytes: 200_000,
          txBytes: 9_000,
        }),
      );
    });

    it("should ignore a gateway's report about a peer of another gateway", async () => {
      const { t, fake } = await tenantWithGateway();
      const other = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const key = sim.publicKey as string;
      await vpn(t.admin.token, '_', device.id, '_connect').expect(200);
      await other.fake.reportPeers([
        { publicKey: key, lastHandshakeOn: Date.now(), rxBytes: 666, txBytes: 666 },
      ]);
      // The owning gateway's own report, sent afterwards, is applied; the other one never was.
      await fake.reportPeers([{ publicKey: key, lastHandshakeOn: null, rxBytes: 5, txBytes: 6 }]);
      await eventually(async () =>
        expect((await getVpnStatus(api, t.admin.token, '_', device.id)).tunnel).toMatchObject({
          rxBytes: 5,
          txBytes: 6,
        }),
      );
      expect((await getVpnStatus(api, t.admin.token, '_', device.id)).tunnel?.lastHandshakeOn).toBeNull();
    });

    it('should keep a MISSING device connected while its gateway saw a fresh handshake, and not otherwise', async () => {
      const { t, fake } = await tenantWithGateway();
      const fresh = await keyedDevice(t.admin.token, t.account);
      const stale = await keyedDevice(t.admin.token, t.account);
      const never = await keyedDevice(t.admin.token, t.account);
      for (const d of [fresh, stale, never])
        await vpn(t.admin.token, '_', d.device.id, '_connect').expect(200);
      await fake.reportPeers([
        {
          publicKey: fresh.sim.publicKey as string,
          lastHandshakeOn: Date.now() - 5_000,
          rxBytes: 10,
          txBytes: 10,
        },
        {
          publicKey: stale.sim.publicKey as string,
          lastHandshakeOn: Date.now() - (FRESH_SECONDS + 30) * 1000,
          rxBytes: 10,
          txBytes: 10,
        },
      ]);
      await eventually(async () => {
        expect(
          (await getVpnStatus(api, t.admin.token, '_', fresh.device.id)).tunnel?.lastHandshakeOn,
        ).not.toBeNull();
        expect(
          (await getVpnStatus(api, t.admin.token, '_', stale.device.id)).tunnel?.lastHandshakeOn,
        ).not.toBeNull();
      });
      for (const d of [fresh, stale, never]) await d.sim.crash();
      await eventually(async () => {
        for (const d of [fresh, stale, never]) {
          expect((await getDevice(api, t.admin.token, '_', d.device.id)).connectionStatus).toBe('MISSING');
        }
      });

      expect(await getVpnStatus(api, t.admin.token, '_', fresh.device.id)).toMatchObject({
        connected: true,
        ipAddress: fresh.device.tunnelAddress,
        status: 'connected',
        deviceConnection: 'MISSING',
      });
      for (const d of [stale, never]) {
        const status: VpnStatusBody = await getVpnStatus(api, t.admin.token, '_', d.device.id);
        expect(status).toMatchObject({
          connected: false,
          ipAddress: '0.0.0.0',
          status: 'error',
          statusCode: StatusCodes.DEVICE_OFFLINE,
          deviceConnection: 'MISSING',
        });
        // The peer stays (grace period): the tunnel is still shown.
        expect(status.tunnel).not.toBeNull();
      }
    });
  });

  describe('the device registry changes the desired state', () => {
    it('should remove the peer of a deleted device from its gateway', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const key = sim.publicKey as string;
      await vpn(t.admin.token, '_', device.id, '_connect').expect(200);
      const from = fake.requests.length;
      await request(api.url).delete(`/v1/_/devices/${device.id}`).set(bearer(t.admin.token)).expect(204);
      const apply = await fake.waitForRequest((r) => r.command === 'apply' && r.reply?.code === 200, {
        from,
      });
      expect(apply.apply).toMatchObject({ upsert: [], remove: [key], addresses: addressesFor() });
      expect(fake.peers.size).toBe(0);
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(0);
    });

    it('should remove the peer of a disabled device from its gateway and cut its link', async () => {
      const { t, gateway, fake } = await tenantWithGateway();
      const { device, sim } = await keyedDevice(t.admin.token, t.account);
      const key = sim.publicKey as string;
      await vpn(t.admin.token, '_', device.id, '_connect').expect(200);
      const from = fake.requests.length;
      const current = await getDevice(api, t.admin.token, '_', device.id);
      await request(api.url)
        .put(`/v1/_/devices/${device.id}`)
        .set(bearer(t.admin.token))
        .send({ status: 'DISABLED', optlock: current.optlock })
        .expect(200);
      const apply = await fake.waitForRequest((r) => r.command === 'apply' && r.reply?.code === 200, {
        from,
      });
      expect(apply.apply).toMatchObject({ upsert: [], remove: [key] });
      expect(fake.peers.size).toBe(0);
      expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(0);
      // Only the embedded broker is managed by the service: it cuts the disabled device's link.
      // (An external broker is configured by its operator; the production-brokers work manages it.)
      if (!usesExternalBroker(api)) await eventually(() => expect(sim.mqtt.connected).toBe(false));
    });
  });
});

describe('grace sweep of unreachable devices', () => {
  let api: TestApi;
  let rootToken: string;
  const closer = new Closer();

  beforeAll(async () => {
    api = await startTestApi({ VPN_PEER_GRACE_SECONDS: '1', VPN_SWEEP_INTERVAL_MS: '200' });
    rootToken = await login(api);
  });

  afterEach(async () => {
    await closer.closeAll();
  });

  afterAll(async () => {
    await closer.closeAll();
    await api?.stop();
  });

  it('should send a change set the gateway refused (500) again, and complete the connect', async () => {
    const t = await createTenant(api, rootToken);
    const { fake } = await startGateway(api, t.admin.token);
    closer.add(fake);
    const device = await createDeviceIn(api, t.admin.token);
    const sim = closer.add(await SimDevice.start(api, t.admin.token, '_', device, t.account.name));
    const from = fake.requests.length;
    fake.answerWith(500, { command: 'apply', times: 1 });
    const res = await request(api.url)
      .post(`/v1/_/devices/${device.id}/vpn/_connect?timeout=10000`)
      .set(bearer(t.admin.token));
    expect(res.status).toBe(200);
    const [refused, retried, ...rest] = fake.requests.slice(from);
    expect(rest).toEqual([]);
    expect(refused.reply?.code).toBe(500);
    expect(retried.apply).toEqual(refused.apply);
    expect(retried.reply?.code).toBe(200);
    expect(fake.peers.has(sim.publicKey as string)).toBe(true);
    expect(sim.commands.map((c) => c.command)).toEqual(['connect']);
    expect(retried.receivedAt).toBeLessThan(sim.commands[0].receivedAt);
  });

  it("should remove a gone device's peer after the grace period, and keep one whose gateway reports fresh handshakes", async () => {
    const t = await createTenant(api, rootToken);
    const { gateway, fake } = await startGateway(api, t.admin.token);
    closer.add(fake);
    const start = async () => {
      const device = await createDeviceIn(api, t.admin.token);
      const sim = closer.add(await SimDevice.start(api, t.admin.token, '_', device, t.account.name));
      await request(api.url)
        .post(`/v1/_/devices/${device.id}/vpn/_connect?timeout=10000`)
        .set(bearer(t.admin.token))
        .expect(200);
      return { device, sim, key: sim.publicKey as string };
    };
    const gone = await start();
    const talking = await start();
    const online = await start(); // MQTT link up, no handshake yet: never swept
    expect([...fake.peers.keys()].sort()).toEqual([gone.key, talking.key, online.key].sort());

    let reporting = true;
    const report = async () => {
      while (reporting) {
        await fake.reportPeers([
          { publicKey: talking.key, lastHandshakeOn: Date.now(), rxBytes: 1, txBytes: 1 },
        ]);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    const reporter = report();
    try {
      await gone.sim.disconnect();
      await talking.sim.disconnect();
      const removal = await fake.waitForRequest((r) => r.apply?.remove.includes(gone.key) === true, {
        timeoutMs: 15_000,
      });
      expect(removal.apply?.remove).toEqual([gone.key]);
      await eventually(() => expect(fake.peers.has(gone.key)).toBe(false));
      // More sweeps, each well past the grace period of the talking device's DC.
      const sweeper = api.app.get(PeerSweeper);
      await sweeper.sweep();
      await sweeper.sweep();
      expect(fake.peers.has(talking.key)).toBe(true);
      expect(fake.peers.has(online.key)).toBe(true);
      expect((await getVpnStatus(api, t.admin.token, '_', talking.device.id)).tunnel).not.toBeNull();
    } finally {
      reporting = false;
      await reporter;
    }
    // Once the handshakes stop, the talking device goes too; the online one stays.
    await fake.waitForRequest((r) => r.apply?.remove.includes(talking.key) === true, { timeoutMs: 15_000 });
    await eventually(() => expect(fake.peers.has(talking.key)).toBe(false));
    expect(fake.peers.has(online.key)).toBe(true);
    expect((await getGateway(api, t.admin.token, '_', gateway.id)).peers).toBe(1);
  });
});

describe('gateway topic ACL (embedded broker)', () => {
  let api: TestApi;
  let rootToken: string;
  let cloudClientId: string;
  const closer = new Closer();

  beforeAll(async () => {
    api = await startTestApi({}, { embeddedBroker: true });
    rootToken = await login(api);
    cloudClientId = api.app.get(KuraRequestClient).clientId;
  });

  afterEach(async () => {
    await closer.closeAll();
  });

  afterAll(async () => {
    await closer.closeAll();
    await api?.stop();
  });

  /** A raw MQTT connection with a gateway's credentials (no BIRTH). */
  const connectAsGateway = async (creds: GatewayCredentials): Promise<MqttClient> =>
    closer.client(
      await connectAsync(api.mqttUrl, {
        clientId: creds.clientId,
        username: creds.username,
        password: creds.password,
        protocolVersion: 4,
        clean: true,
        reconnectPeriod: 0,
        connectTimeout: 5000,
      }),
    );

  /** A registered gateway with credentials, and no session yet. */
  const gatewayCreds = async (token: string, scope = '_') => {
    const gateway = await createGateway(api, token, scope);
    return { gateway, creds: await issueGatewayCredentials(api, token, scope, gateway.id) };
  };

  /** The broker refuses the publish by closing the connection (aedes sends no PUBACK). */
  const expectPublishRefused = async (client: MqttClient, topic: string, payload: Buffer) => {
    const gone = closed(client);
    client.publish(topic, payload, { qos: 1 }, () => undefined);
    await gone;
  };

  const emptyPayload = () => encodeKuraPayload({ timestamp: Date.now(), metrics: [] });
  const gatewayAck = () => encodeKuraPayload(buildGatewayReply({ code: ResponseCodes.OK, serial: 1 }));

  it('should let a gateway get its requests, reply under VPNGATEWAY-V1 and publish its peer report', async () => {
    const t = await createTenant(api, rootToken);
    const { gateway, fake } = await startGateway(api, t.admin.token);
    closer.add(fake);
    const device = await createDeviceIn(api, t.admin.token);
    const sim = closer.add(await SimDevice.start(api, t.admin.token, '_', device, t.account.name));
    // The apply reached the gateway and its reply reached the cloud: the connect went through.
    await request(api.url)
      .post(`/v1/_/devices/${device.id}/vpn/_connect?timeout=10000`)
      .set(bearer(t.admin.token))
      .expect(200);
    await fake.reportPeers([
      { publicKey: sim.publicKey as string, lastHandshakeOn: Date.now(), rxBytes: 42, txBytes: 43 },
    ]);
    await eventually(async () =>
      expect((await getVpnStatus(api, t.admin.token, '_', device.id)).tunnel).toMatchObject({
        gatewayId: gateway.id,
        rxBytes: 42,
        txBytes: 43,
      }),
    );
    // A reply to any requester of its account under its own application is accepted (PUBACK).
    await fake.mqtt.publishAsync(
      Topics.reply(t.account.name, cloudClientId, randomUUID(), GATEWAY_APP_ID),
      gatewayAck(),
      { qos: 1 },
    );
    expect(fake.connected).toBe(true);
  });

  it('should not let a gateway publish VPNCLIENT-V2 replies', async () => {
    const t = await createTenant(api, rootToken);
    const { creds } = await gatewayCreds(t.admin.token);
    const client = await connectAsGateway(creds);
    await expectPublishRefused(
      client,
      Topics.reply(t.account.name, cloudClientId, randomUUID(), VPN_APP_ID),
      encodeKuraPayload({ timestamp: Date.now(), metrics: [] }),
    );
  });

  it.each([
    ['the peer report', (acc: string, name: string) => Topics.gatewayPeers(acc, name)],
    ['the BIRTH', (acc: string, name: string) => Topics.birth(acc, name)],
    ['the DC', (acc: string, name: string) => Topics.disconnect(acc, name)],
    ['a request', (acc: string, name: string) => Topics.gatewayCommand(acc, name, 'apply')],
  ])('should not let a gateway publish %s of another gateway of its account', async (_what, topic) => {
    const t = await createTenant(api, rootToken);
    const { creds } = await gatewayCreds(t.admin.token);
    const { gateway: victim } = await gatewayCreds(t.admin.token);
    const client = await connectAsGateway(creds);
    await expectPublishRefused(client, topic(t.account.name, victim.name), emptyPayload());
  });

  it("should not let a gateway subscribe to another gateway's requests or a device's commands", async () => {
    const t = await createTenant(api, rootToken);
    const { creds } = await gatewayCreds(t.admin.token);
    const { gateway: other } = await gatewayCreds(t.admin.token);
    const device = await createDeviceIn(api, t.admin.token);
    const client = await connectAsGateway(creds);
    expect(
      await subscribeGranted(client, [
        gatewayCommandSubscription(t.account.name, other.name),
        deviceCommandSubscription(t.account.name, device.clientId),
        `$EDC/${t.account.name}/+/${GATEWAY_APP_ID}/#`,
        `${t.account.name}/+/${GATEWAY_APP_ID}/peers`,
        gatewayCommandSubscription(t.account.name, creds.clientId),
      ]),
    ).toEqual([128, 128, 128, 128, 1]);
  });

  it("should not let a gateway publish a device's status", async () => {
    const t = await createTenant(api, rootToken);
    const { creds } = await gatewayCreds(t.admin.token);
    const device = await createDeviceIn(api, t.admin.token);
    const client = await connectAsGateway(creds);
    await expectPublishRefused(client, Topics.status(t.account.name, device.clientId), emptyPayload());
  });

  it.each([
    [
      'a gateway reply',
      (acc: string, gw: string, cloud: string) => Topics.reply(acc, cloud, randomUUID(), GATEWAY_APP_ID),
    ],
    ["its gateway's peer report", (acc: string, gw: string) => Topics.gatewayPeers(acc, gw)],
    ["its gateway's BIRTH", (acc: string, gw: string) => Topics.birth(acc, gw)],
  ])('should not let a device publish %s', async (_what, topic) => {
    const t = await createTenant(api, rootToken);
    const { gateway } = await gatewayCreds(t.admin.token);
    const device = await createDeviceIn(api, t.admin.token);
    const sim = closer.add(await SimDevice.start(api, t.admin.token, '_', device, t.account.name));
    await expectPublishRefused(sim.mqtt, topic(t.account.name, gateway.name, cloudClientId), gatewayAck());
  });

  it("should not let a gateway of account A subscribe or publish to account B's topics", async () => {
    const a = await createTenant(api, rootToken);
    const b = await createTenant(api, rootToken);
    const { creds } = await gatewayCreds(a.admin.token);
    const { gateway: gwB } = await gatewayCreds(b.admin.token);
    const deviceB = await createDeviceIn(api, b.admin.token);
    const client = await connectAsGateway(creds);
    expect(
      await subscribeGranted(client, [
        gatewayCommandSubscription(b.account.name, gwB.name),
        // Its own name under B's account is still B's namespace.
        gatewayCommandSubscription(b.account.name, creds.clientId),
        deviceCommandSubscription(b.account.name, deviceB.clientId),
        `$EDC/${b.account.name}/#`,
        `${b.account.name}/#`,
        '$EDC/+/+/VPNGATEWAY-V1/#',
        '#',
      ]),
    ).toEqual([128, 128, 128, 128, 128, 128, 128]);
    expect(client.connected).toBe(true);
    await expectPublishRefused(client, Topics.gatewayPeers(b.account.name, gwB.name), emptyPayload());
    const again = await connectAsGateway(creds);
    await expectPublishRefused(
      again,
      Topics.reply(b.account.name, cloudClientId, randomUUID(), GATEWAY_APP_ID),
      gatewayAck(),
    );
  });
});
