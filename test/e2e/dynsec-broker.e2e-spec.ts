/**
 * Real agent and gateway processes through an authenticated Mosquitto: a private Mosquitto with
 * the dynamic-security plugin and `allow_anonymous false` (test/support/mosquitto-dynsec.ts), the
 * API started with MQTT_BROKER_KIND=mosquitto-dynsec as its dynsec admin, and the edge processes
 * given only the credentials the REST API issues. The agent runs the simulated driver (no root);
 * the gateway needs WireGuard, so its part runs only where root and the tunnel tools are.
 */
import { join } from 'node:path';
import request from 'supertest';
import {
  createDeviceWithCredentials,
  getDevice,
  waitForConnectionStatus,
  type DeviceCredentials,
  type DeviceWithCredentials,
} from '../support/device-factories';
import { createTenant, type Tenant } from '../support/factories';
import { bearer, login } from '../support/http';
import { eventually, expectNothingFor, holds } from '../support/eventually';
import { startMosquittoDynsec, type MosquittoDynsec } from '../support/mosquitto-dynsec';
import { Underlay, wgPeers } from '../support/netns';
import { TUNNEL_NEEDS, describeWhen } from '../support/prerequisites';
import {
  ProcessGroup,
  startApiProcess,
  startDeviceAgent,
  startGatewayProcess,
  type ApiProcess,
  type LoggedProcess,
} from '../support/processes';

/** The agent's reconnect period here: how often a cut agent knocks again. */
const RECONNECT_MS = 200;
/**
 * How long a cut agent is watched to stay out: 15 of its reconnect attempts. An accepted attempt
 * shows within a few ms (the agent logs its BIRTH, the API marks the device CONNECTED soon after).
 */
const STAYS_OUT_MS = 15 * RECONNECT_MS;
const STAYS_OUT_REASON =
  `the agent reconnects every ${RECONNECT_MS} ms, so ${STAYS_OUT_MS} ms is ~15 attempts; an accepted ` +
  'one would log a BIRTH at once and make the device CONNECTED within ~100 ms';

describe('real agent and gateway processes through Mosquitto with dynamic security', () => {
  const procs = new ProcessGroup();
  let broker: MosquittoDynsec | undefined;
  let api: ApiProcess;
  let rootToken: string;
  let tenant: Tenant;

  /** CONNECTs the private broker has refused so far (Mosquitto logs them without a client id). */
  const refusals = (): number => broker!.log().match(/disconnected, not authorised/g)?.length ?? 0;

  /** A real agent (simulated driver) for `device`, connecting as `{account}:{clientId}`. */
  const startAgent = (device: DeviceWithCredentials, args: string[] = []) =>
    startDeviceAgent(api, device, ['--reconnect-period-ms', String(RECONNECT_MS), ...args]).then((a) =>
      procs.agent(a),
    );

  /**
   * Asserts that the cut `agent` stays out: no BIRTH of a new connection in its log, its device
   * never CONNECTED again (unless `deleted`), and the broker keeps refusing its attempts.
   */
  const expectStaysOut = async (agent: LoggedProcess, deviceId: string, deleted = false) => {
    const fromLine = agent.lines.length;
    const refusedBefore = refusals();
    await expectNothingFor(STAYS_OUT_MS, STAYS_OUT_REASON, async () => {
      expect(agent.lines.slice(fromLine).filter((l) => l.includes('BIRTH published'))).toEqual([]);
      if (deleted) {
        const res = await request(api.url).get(`/v1/_/devices/${deviceId}`).set(bearer(tenant.admin.token));
        expect(res.status).toBe(404);
      } else {
        expect((await getDevice(api, tenant.admin.token, '_', deviceId)).connectionStatus).not.toBe(
          'CONNECTED',
        );
      }
    });
    // It kept trying all along (this broker refuses no one else meanwhile) and is still running.
    expect(refusals() - refusedBefore).toBeGreaterThanOrEqual(3);
    expect(agent.child.exitCode).toBeNull();
  };

  const issueCredentials = async (deviceId: string): Promise<DeviceCredentials> => {
    const res = await request(api.url)
      .post(`/v1/_/devices/${deviceId}/credentials`)
      .set(bearer(tenant.admin.token));
    expect(res.status).toBe(201);
    return res.body as DeviceCredentials;
  };

  beforeAll(async () => {
    broker = await startMosquittoDynsec();
    api = procs.api(await startApiProcess({ ...broker.apiEnv, MQTT_CLEAN_SESSION: 'true' }));
    rootToken = await login(api);
    tenant = await createTenant(api, rootToken);
  }, 180_000);

  afterAll(async () => {
    await procs.stopAll();
    await broker?.stop();
  }, 60_000);

  describe('a device agent', () => {
    it("should connect with its full client id and answer _connect and _disconnect with the agent's own reply", async () => {
      const device = await createDeviceWithCredentials(api, tenant.admin.token, '_');
      expect(device.credentials.username).toBe(`${device.credentials.account}:${device.clientId}`);
      const agent = await startAgent(device);
      try {
        await waitForConnectionStatus(api, tenant.admin.token, '_', device.id, 'CONNECTED');
        const up = await request(api.url)
          .post(`/v1/_/devices/${device.id}/vpn/_connect?timeout=15000`)
          .set(bearer(tenant.admin.token));
        expect(up.status).toBe(200);
        expect(up.body).toMatchObject({
          connected: true,
          ipAddress: device.tunnelAddress,
          status: 'connected',
          deviceConnection: 'CONNECTED',
        });
        // The answer is the agent's: it brought its (simulated) tunnel up with the cloud's address.
        await agent.waitFor(
          /"status":"connected".*"status reported"|"status reported".*"status":"connected"/,
          5000,
        );
        const down = await request(api.url)
          .post(`/v1/_/devices/${device.id}/vpn/_disconnect?timeout=15000`)
          .set(bearer(tenant.admin.token));
        expect(down.status).toBe(200);
        expect(down.body).toMatchObject({ connected: false, ipAddress: '0.0.0.0', status: 'idle' });
      } finally {
        await agent.stop();
      }
    });

    it('should cut the session when the credentials are rotated and keep the agent with the old password out', async () => {
      const device = await createDeviceWithCredentials(api, tenant.admin.token, '_');
      const agent = await startAgent(device);
      let rotated: DeviceCredentials;
      try {
        await waitForConnectionStatus(api, tenant.admin.token, '_', device.id, 'CONNECTED');
        const cutAt = agent.lines.length;
        rotated = await issueCredentials(device.id);
        expect(rotated.password).not.toBe(device.credentials.password);
        await agent.waitFor('broker connection lost', 10_000, cutAt);
        // Mosquitto kicks a changed dynsec client without its will; the cloud records the cut as
        // the LWT would have been.
        await waitForConnectionStatus(api, tenant.admin.token, '_', device.id, 'MISSING');
        await expectStaysOut(agent, device.id);
      } finally {
        await agent.stop();
      }
      // The refusals were about the old password: the same device comes back with the new one.
      const renewed = await startAgent({ ...device, credentials: rotated });
      try {
        await waitForConnectionStatus(api, tenant.admin.token, '_', device.id, 'CONNECTED');
      } finally {
        await renewed.stop();
      }
    });

    it('should cut a deleted device and keep its agent out', async () => {
      const device = await createDeviceWithCredentials(api, tenant.admin.token, '_');
      const agent = await startAgent(device);
      try {
        await waitForConnectionStatus(api, tenant.admin.token, '_', device.id, 'CONNECTED');
        const cutAt = agent.lines.length;
        await request(api.url)
          .delete(`/v1/_/devices/${device.id}`)
          .set(bearer(tenant.admin.token))
          .expect(204);
        await agent.waitFor('broker connection lost', 10_000, cutAt);
        await expectStaysOut(agent, device.id, true);
      } finally {
        await agent.stop();
      }
    });
  });

  describeWhen('a real gateway through dynsec', TUNNEL_NEEDS)('a gateway process (WireGuard)', () => {
    const GW_UNDERLAY = '198.18.0.1';
    const GW_PORT = 51820;
    let net: Underlay | undefined;
    let gatewayNs: string;
    let gatewayIf: string;
    let gatewayId: string;
    let gateway: LoggedProcess;

    beforeAll(async () => {
      net = await Underlay.create();
      gatewayNs = await net.addHost('gw', GW_UNDERLAY);
      gatewayIf = net.name('wgg');
      net.track(gatewayNs, gatewayIf);
      // In the root account, so it carries the tenant's devices too.
      const name = `hub-${net.suffix}`;
      const created = await request(api.url)
        .post('/v1/_/gateways')
        .set(bearer(rootToken))
        .send({ name, endpoint: `${GW_UNDERLAY}:${GW_PORT}` });
      expect(created.status).toBe(201);
      gatewayId = created.body.id as string;
      const creds = await request(api.url)
        .post(`/v1/_/gateways/${gatewayId}/credentials`)
        .set(bearer(rootToken));
      expect(creds.status).toBe(201);
      expect(creds.body.username).toBe(`${creds.body.account}:${name}`);
      gateway = procs.agent(
        await startGatewayProcess({
          broker: broker!.url,
          account: creds.body.account as string,
          clientId: name,
          username: creds.body.username as string,
          password: creds.body.password as string,
          listenPort: GW_PORT,
          interfaceName: gatewayIf,
          netns: gatewayNs,
          stateDir: join(net.workDir, 'gateway'),
          args: ['--stats-interval-ms', '1000', '--reconnect-period-ms', String(RECONNECT_MS)],
        }),
      );
    }, 120_000);

    afterAll(async () => {
      await gateway?.stop();
      await net?.destroy();
    }, 60_000);

    it('should come CONNECTED with its key and hold the peer of a device between _connect and _disconnect', async () => {
      await eventually(
        async () =>
          holds(
            'the gateway to be CONNECTED with its key',
            (await request(api.url).get(`/v1/_/gateways/${gatewayId}`).set(bearer(rootToken))).body as {
              connection: string;
              publicKey: string | null;
            },
            (g) => g.connection === 'CONNECTED' && !!g.publicKey,
          ),
        15_000,
        100,
      );
      const device = await createDeviceWithCredentials(api, tenant.admin.token, '_');
      // A simulated tunnel with a (well-formed) WireGuard key: the cloud gives it a gateway peer.
      const agent = await startAgent(device, ['--announce-key']);
      try {
        await waitForConnectionStatus(api, tenant.admin.token, '_', device.id, 'CONNECTED');
        const key = (await getDevice(api, tenant.admin.token, '_', device.id)).vpnPublicKey as string;
        expect(key).toMatch(/^[A-Za-z0-9+/]{43}=$/);
        expect(await wgPeers(gatewayNs, gatewayIf)).not.toContain(key);

        const up = await request(api.url)
          .post(`/v1/_/devices/${device.id}/vpn/_connect?timeout=15000`)
          .set(bearer(tenant.admin.token));
        expect(up.status).toBe(200);
        expect(up.body).toMatchObject({
          connected: true,
          ipAddress: device.tunnelAddress,
          tunnel: { gatewayId },
        });
        // _connect waits for the gateway's acknowledgement of the peer sync: the peer is on it now.
        expect(await wgPeers(gatewayNs, gatewayIf)).toContain(key);

        const down = await request(api.url)
          .post(`/v1/_/devices/${device.id}/vpn/_disconnect?timeout=15000`)
          .set(bearer(tenant.admin.token));
        expect(down.status).toBe(200);
        expect(down.body).toMatchObject({ connected: false, tunnel: null });
        await eventually(
          async () =>
            holds(
              'the peer to leave the gateway',
              await wgPeers(gatewayNs, gatewayIf),
              (p) => !p.includes(key),
            ),
          15_000,
          100,
        );
      } finally {
        await agent.stop();
      }
    });

    it('should cut the gateway when its credentials are rotated, record it MISSING, and keep the old password out', async () => {
      const cutAt = gateway.lines.length;
      const refusedBefore = refusals();
      const rotated = await request(api.url)
        .post(`/v1/_/gateways/${gatewayId}/credentials`)
        .set(bearer(rootToken));
      expect(rotated.status).toBe(201);
      await gateway.waitFor('broker connection lost', 10_000, cutAt);
      await eventually(
        async () =>
          holds(
            'the gateway to be MISSING',
            (await request(api.url).get(`/v1/_/gateways/${gatewayId}`).set(bearer(rootToken))).body as {
              connection: string;
            },
            (g) => g.connection === 'MISSING',
          ),
        15_000,
        100,
      );
      await expectNothingFor(
        STAYS_OUT_MS,
        `the gateway reconnects every ${RECONNECT_MS} ms, so ${STAYS_OUT_MS} ms is ~15 attempts; an accepted one would publish its BIRTH and make it CONNECTED within ~100 ms`,
        async () => {
          expect(gateway.lines.slice(cutAt).filter((l) => l.includes('BIRTH published'))).toEqual([]);
          const g = (await request(api.url).get(`/v1/_/gateways/${gatewayId}`).set(bearer(rootToken)))
            .body as {
            connection: string;
          };
          expect(g.connection).not.toBe('CONNECTED');
        },
      );
      expect(refusals() - refusedBefore).toBeGreaterThanOrEqual(3);
      expect(gateway.child.exitCode).toBeNull();
    });
  });
});
