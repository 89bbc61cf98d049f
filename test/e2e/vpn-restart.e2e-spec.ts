import { connect } from 'mqtt';
import request from 'supertest';
import { eventually, holds } from '../support/eventually';
import { bearer, expectError, login } from '../support/http';
import { createTenant } from '../support/factories';
import {
  clearMqttSession,
  createDeviceWithCredentials,
  type DeviceWithCredentials,
  getVpnStatus,
  listEvents,
  listOperations,
  waitForConnectionStatus,
} from '../support/device-factories';
import {
  type ApiProcess,
  ProcessGroup,
  startAgentProcess,
  startApiProcess,
  startDeviceAgent,
} from '../support/processes';

/** Restarts of either side: the agent process, the API process (same database), and the broker link. */
describe('device VPN across restarts', () => {
  const procs = new ProcessGroup();
  let api: ApiProcess;
  let token: string;

  const command = (device: DeviceWithCredentials, path: string) =>
    request(api.url).post(`/v1/_/devices/${device.id}/vpn/${path}`).set(bearer(token));
  const births = async (device: DeviceWithCredentials) =>
    (await listEvents(api, token, '_', device.id, { limit: 500 })).items.filter((e) => e.type === 'BIRTH')
      .length;

  beforeAll(async () => {
    // The production default even on a shared broker: what is published while the API
    // is down waits in its persistent session (cleared in afterAll).
    api = procs.api(await startApiProcess({ MQTT_CLEAN_SESSION: 'false' }));
    const tenant = await createTenant(api, await login(api));
    token = tenant.admin.token;
  }, 120_000);

  afterAll(async () => {
    await procs.stopAll();
    if (api?.env.MQTT_URL) await clearMqttSession(api.mqttUrl, api.env.MQTT_CLIENT_ID);
  });

  describe('agent restart', () => {
    it('should publish BIRTH again and be CONNECTED after a clean stop and a start with the same credentials', async () => {
      const device = await createDeviceWithCredentials(api, token);
      const first = procs.agent(await startDeviceAgent(api, device));
      await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
      expect(await first.stop('SIGTERM')).toBe(0);
      await waitForConnectionStatus(api, token, '_', device.id, 'DISCONNECTED');

      procs.agent(await startDeviceAgent(api, device));
      await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
      expect(await births(device)).toBe(2);
      expect((await command(device, '_connect')).body).toMatchObject({
        connected: true,
        ipAddress: device.tunnelAddress,
      });
    });

    it("should accept the new boot's status report after a crash, so the status converges, and connect again", async () => {
      const device = await createDeviceWithCredentials(api, token);
      const first = procs.agent(await startDeviceAgent(api, device));
      await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
      expect((await command(device, '_connect')).body).toMatchObject({ connected: true });

      await first.stop('SIGKILL');
      await waitForConnectionStatus(api, token, '_', device.id, 'MISSING');
      // The agent's last word was "connected", but a MISSING device without a gateway handshake
      // is not provably there: the status must not claim a tunnel.
      expect(await getVpnStatus(api, token, '_', device.id)).toMatchObject({
        connected: false,
        ipAddress: '0.0.0.0',
        status: 'error',
        statusCode: '220',
        deviceConnection: 'MISSING',
        tunnel: null,
      });

      procs.agent(await startDeviceAgent(api, device));
      await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
      // The new boot starts its seq again from 1: it must still replace the old boot's higher seq.
      const converged = await eventually(
        async () =>
          holds(
            "the restarted agent's status report",
            await getVpnStatus(api, token, '_', device.id),
            (s) => !s.connected,
          ),
        15_000,
        100,
      );
      expect(converged).toMatchObject({
        connected: false,
        ipAddress: '0.0.0.0',
        deviceConnection: 'CONNECTED',
      });

      const again = await command(device, '_connect');
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ connected: true, ipAddress: device.tunnelAddress });
    });
  });

  describe('API restart on the same database', () => {
    it('should leave no operation RUNNING when the API is killed mid-command and restarted', async () => {
      const device = await createDeviceWithCredentials(api, token);
      procs.agent(await startDeviceAgent(api, device, ['--fail-mode', 'timeout']));
      await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
      const inFlight = command(device, '_connect?timeout=60000').then(
        (r) => r.status,
        () => 'connection lost',
      );
      await eventually(
        async () =>
          holds(
            'the connect operation to be RUNNING',
            await listOperations(api, token, '_', device.id),
            (ops) => ops[0]?.status === 'RUNNING',
          ),
        15_000,
        100,
      );

      api = await procs.restartApi(api, 'SIGKILL');
      // The killed process never answered.
      expect(await inFlight).toBe('connection lost');

      const ops = await listOperations(api, token, '_', device.id);
      expect(ops).toHaveLength(1);
      expect(ops[0]).toMatchObject({ command: 'connect', status: 'FAILED' });
      expect(ops[0].endedOn).not.toBeNull();
    });

    it('should answer the command in flight with 503 and leave no operation RUNNING when the API stops cleanly', async () => {
      const device = await createDeviceWithCredentials(api, token);
      procs.agent(await startDeviceAgent(api, device, ['--fail-mode', 'timeout']));
      await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
      const inFlight = command(device, '_connect?timeout=60000').then((r) => r);
      await eventually(
        async () =>
          holds(
            'the connect operation to be RUNNING',
            await listOperations(api, token, '_', device.id),
            (ops) => ops[0]?.status === 'RUNNING',
          ),
        15_000,
        100,
      );

      api = await procs.restartApi(api, 'SIGTERM');
      expectError(await inFlight, 503, 'SERVICE_UNAVAILABLE');

      const ops = await listOperations(api, token, '_', device.id);
      expect(ops.map((o) => o.status)).toEqual(['FAILED']);
    });

    it('should take an agent that (re)connects while the API is down back to CONNECTED and run commands', async () => {
      const device = await createDeviceWithCredentials(api, token);
      const first = procs.agent(await startDeviceAgent(api, device));
      await first.stop('SIGKILL');
      await waitForConnectionStatus(api, token, '_', device.id, 'MISSING');

      await api.stop('SIGTERM');
      // Started while the API (and an embedded broker) is down: it keeps retrying and
      // publishes BIRTH as soon as the broker takes it, maybe before the cloud has subscribed.
      procs.agent(
        await startAgentProcess(
          {
            broker: api.mqttUrl,
            account: device.credentials.account,
            clientId: device.credentials.clientId,
            username: device.credentials.username,
            password: device.credentials.password,
            args: ['--connect-delay-ms', '20', '--reconnect-period-ms', '100'],
          },
          false,
        ),
      );
      api = await procs.restartApi(api);

      await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
      const res = await command(device, '_connect');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ connected: true, ipAddress: device.tunnelAddress });
    });
  });

  describe('broker-side disconnect', () => {
    it('should reconnect the agent, publish BIRTH again and keep the device commandable', async () => {
      const device = await createDeviceWithCredentials(api, token);
      const agent = procs.agent(await startDeviceAgent(api, device));
      await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
      const before = await births(device);
      const mark = agent.lines.length;

      // A second connection with the agent's MQTT client id ({account}:{clientId}) makes the
      // broker drop the agent's.
      const intruder = connect(api.mqttUrl, {
        clientId: `${device.credentials.account}:${device.credentials.clientId}`,
        username: device.credentials.username,
        password: device.credentials.password,
        reconnectPeriod: 0,
        connectTimeout: 10_000,
      });
      try {
        await new Promise<void>((resolve, reject) => {
          intruder.once('connect', () => resolve());
          intruder.once('error', reject);
        });
      } finally {
        await intruder.endAsync(true);
      }

      await agent.waitFor('reconnected, BIRTH published', 15_000, mark);
      await eventually(
        async () => holds('a new BIRTH event', await births(device), (n) => n > before),
        15_000,
        100,
      );
      await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
      const res = await command(device, '_connect');
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ connected: true, ipAddress: device.tunnelAddress });
    });
  });
});
