import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'mqtt';
import request from 'supertest';
import { encodeKuraPayload, Topics } from '@app/protocol';
import {
  createDeviceWithCredentials,
  getVpnStatus,
  listOperations,
  waitForConnectionStatus,
  type DeviceWithCredentials,
} from '../support/device-factories';
import { eventually, holds } from '../support/eventually';
import { createTenant } from '../support/factories';
import { bearer, expectError, login } from '../support/http';
import { ProcessGroup, startDeviceAgent } from '../support/processes';
import { startPrivateMosquitto, type PrivateMosquitto } from '../support/mosquitto';
import { startApiProcess, startFleetProcess, type ApiProcess } from '../support/processes';

/** The agents' MQTT keepalive in these tests: the bound every convergence is held to is 1.5 × it. */
const KEEPALIVE_S = 10;
const FLEET = 50;

/**
 * Connection truth after faults: what the cloud stores about devices must come back to what the
 * devices are after a broker restart, an API restart with lost messages, and a connection that
 * drops without a will.
 */
describe('connection truth after faults (private Mosquitto)', () => {
  const procs = new ProcessGroup();
  let broker: PrivateMosquitto;
  let api: ApiProcess;
  let token: string;
  let account: string;
  let fleet: DeviceWithCredentials[];
  let credentialsDir: string | undefined;

  const command = (device: DeviceWithCredentials, path: string) =>
    request(api.url).post(`/v1/_/devices/${device.id}/vpn/${path}`).set(bearer(token));
  const agentArgs = ['--keepalive', String(KEEPALIVE_S), '--reconnect-period-ms', '200'];

  beforeAll(async () => {
    broker = await startPrivateMosquitto();
    // A clean session: what is published while the API is away is lost, as with a broker restart.
    api = procs.api(
      await startApiProcess({
        MQTT_URL: broker.url,
        MQTT_CLEAN_SESSION: 'true',
        RESYNC_TIMEOUT_MS: '3000',
      }),
    );
    const tenant = await createTenant(api, await login(api));
    token = tenant.admin.token;
    account = tenant.account.name;
    fleet = await Promise.all(
      Array.from({ length: FLEET }, () => createDeviceWithCredentials(api, token, '_')),
    );
    credentialsDir = mkdtempSync(join(tmpdir(), 'vpncloud-e2e-fleet-'));
    const credentialsFile = join(credentialsDir, 'credentials.json');
    writeFileSync(credentialsFile, JSON.stringify(fleet.map((d) => d.credentials)), { mode: 0o600 });
    procs.agent(
      await startFleetProcess({
        broker: broker.url,
        account,
        credentialsFile,
        count: FLEET,
        args: ['--connect-delay-ms', '20', ...agentArgs],
      }),
    );
  }, 180_000);

  afterAll(async () => {
    await procs.stopAll();
    await broker?.destroy();
    if (credentialsDir) rmSync(credentialsDir, { recursive: true, force: true });
  });

  const connectedCount = async () => {
    const res = await request(api.url)
      .get('/v1/_/devices?connectionStatus=CONNECTED&limit=200')
      .set(bearer(token));
    return res.body.size as number;
  };

  it(`should have ${FLEET} agents CONNECTED with the right statuses, and silent ones MISSING, within keepalive × 1.5 of a broker restart`, async () => {
    await eventually(
      async () => holds(`all ${FLEET} CONNECTED`, await connectedCount(), (n) => n === FLEET),
      60_000,
      100,
    );
    const tunnelled = fleet.slice(0, 5);
    for (const d of tunnelled) expect((await command(d, '_connect')).status).toBe(200);
    // Three more devices whose agents die while the broker is down: no LWT can reach anyone.
    const doomed = await Promise.all([0, 1, 2].map(() => createDeviceWithCredentials(api, token, '_')));
    const doomedAgents = [];
    for (const d of doomed) {
      doomedAgents.push(procs.agent(await startDeviceAgent(api, d, agentArgs)));
    }
    for (const d of doomed) await waitForConnectionStatus(api, token, '_', d.id, 'CONNECTED');

    await broker.stop();
    await Promise.all(doomedAgents.map((a) => a.stop('SIGKILL')));
    await broker.start();
    const restarted = Date.now();

    const bound = KEEPALIVE_S * 1500;
    for (const d of doomed) await waitForConnectionStatus(api, token, '_', d.id, 'MISSING', bound);
    await eventually(
      async () => holds(`all ${FLEET} CONNECTED again`, await connectedCount(), (n) => n === FLEET),
      bound,
      100,
    );
    for (const d of fleet) {
      const expected = tunnelled.includes(d)
        ? { connected: true, ipAddress: d.tunnelAddress, deviceConnection: 'CONNECTED' }
        : { connected: false, deviceConnection: 'CONNECTED' };
      expect({ clientId: d.clientId, ...(await getVpnStatus(api, token, '_', d.id)) }).toMatchObject(
        expected,
      );
    }
    const converged = Date.now() - restarted;
    expect(converged).toBeLessThan(bound);
    console.log(`broker restart: ${FLEET} agents CONNECTED, 3 silent MISSING, in ${converged} ms`);
    // And commandable through the new broker session.
    expect((await command(fleet[10], '_connect')).status).toBe(200);
  }, 120_000);

  it('should end a command in flight across a broker restart within its timeout, close its operation and keep the device right', async () => {
    const device = await createDeviceWithCredentials(api, token, '_');
    procs.agent(await startDeviceAgent(api, device, [...agentArgs, '--connect-delay-ms', '1500']));
    await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
    const sent = Date.now();
    const inFlight = command(device, '_connect?timeout=8000').then((r) => r);
    await eventually(
      async () =>
        holds(
          'the connect operation to be RUNNING',
          await (() => listOperations(api, token, '_', device.id))(),
          (ops) => ops[0]?.status === 'RUNNING',
        ),
      15_000,
      100,
    );
    await broker.restart();
    const res = await inFlight;
    const took = Date.now() - sent;
    // The request reached the agent before the restart; its reply is published after the agent
    // reconnects, and reaches the cloud only if the cloud has subscribed again by then.
    expect([200, 504]).toContain(res.status);
    expect(took).toBeLessThan(8000 + 2000);
    const [op] = await listOperations(api, token, '_', device.id);
    expect(op.status).toBe(res.status === 200 ? 'COMPLETED' : 'TIMEOUT');
    await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED', KEEPALIVE_S * 1500);
    const status = await eventually(
      async () =>
        holds(
          'the tunnel the agent brought up to be stored',
          await (() => getVpnStatus(api, token, '_', device.id))(),
          (s) => s.connected,
        ),
      KEEPALIVE_S * 1500,
      100,
    );
    expect(status).toMatchObject({ ipAddress: device.tunnelAddress, deviceConnection: 'CONNECTED' });
    console.log(`broker restart mid-command: ${res.status} after ${took} ms, operation ${op.status}`);
  }, 60_000);

  it("should have an agent whose status changed while the API was down right within seconds of the API's return", async () => {
    const device = await createDeviceWithCredentials(api, token, '_');
    const first = procs.agent(await startDeviceAgent(api, device, agentArgs));
    await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
    expect((await command(device, '_connect')).body).toMatchObject({ connected: true });

    await api.stop('SIGTERM');
    // While the API is away the agent restarts (a new boot, no tunnel): its BIRTH and status
    // report go to a broker the cloud is not subscribed on, and are lost.
    await first.stop('SIGKILL');
    procs.agent(await startDeviceAgent(api, device, agentArgs));
    api = await procs.restartApi(api);
    const back = Date.now();

    const status = await eventually(
      async () =>
        holds(
          'the restarted agent status',
          await (() => getVpnStatus(api, token, '_', device.id))(),
          (s) => !s.connected,
        ),
      10_000,
      100,
    );
    expect(status).toMatchObject({ connected: false, ipAddress: '0.0.0.0', deviceConnection: 'CONNECTED' });
    console.log(`status right ${Date.now() - back} ms after the API's return`);
  }, 120_000);
});

describe('connection truth: a connection closed without a will (embedded broker)', () => {
  const procs = new ProcessGroup();
  let api: ApiProcess;
  let token: string;

  beforeAll(async () => {
    api = procs.api(await startApiProcess({ MQTT_URL: '', MQTT_CLEAN_SESSION: 'false' }));
    token = (await createTenant(api, await login(api))).admin.token;
  }, 120_000);

  afterAll(() => procs.stopAll());

  /** A device client that sets no will and answers nothing: only its BIRTH is sent. */
  async function willessDevice(device: DeviceWithCredentials) {
    const { account, clientId, username, password } = device.credentials;
    const client = connect(api.mqttUrl, {
      clientId: `${account}:${clientId}`,
      username,
      password,
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    });
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    await client.publishAsync(Topics.birth(account, clientId), encodeKuraPayload({ metrics: [] }), {
      qos: 1,
    });
    await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
    return client;
  }

  it('should mark the device DISCONNECTED and fail the command waiting for it with 409 at once', async () => {
    const device = await createDeviceWithCredentials(api, token, '_');
    const client = await willessDevice(device);
    const inFlight = request(api.url)
      .post(`/v1/_/devices/${device.id}/vpn/_connect?timeout=60000`)
      .set(bearer(token))
      .then((r) => r);
    // The request has reached the device's topic before the link drops.
    await eventually(
      async () =>
        holds(
          'the connect operation to be RUNNING',
          await (() => listOperations(api, token, '_', device.id))(),
          (ops) => ops[0]?.status === 'RUNNING',
        ),
      15_000,
      100,
    );
    const dropped = Date.now();
    client.stream.destroy();

    const res = await inFlight;
    const waited = Date.now() - dropped;
    expectError(res, 409, 'DEVICE_NOT_CONNECTED');
    expect(waited).toBeLessThan(5000);
    await waitForConnectionStatus(api, token, '_', device.id, 'DISCONNECTED', 5000);
    const next = await request(api.url).post(`/v1/_/devices/${device.id}/vpn/_connect`).set(bearer(token));
    expectError(next, 409, 'DEVICE_NOT_CONNECTED');
    console.log(`connection closed without a will: command failed after ${waited} ms`);
  });

  it('should mark a device that sends DISCONNECT without DC DISCONNECTED', async () => {
    const device = await createDeviceWithCredentials(api, token, '_');
    const client = await willessDevice(device);
    await client.endAsync();
    await waitForConnectionStatus(api, token, '_', device.id, 'DISCONNECTED', 5000);
  });
});
