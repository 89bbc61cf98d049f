import request from 'supertest';
import { bearer, login } from '../support/http';
import {
  createDeviceWithCredentials,
  type DeviceWithCredentials,
  getDevice,
  waitForConnectionStatus,
} from '../support/device-factories';
import {
  type ApiProcess,
  type LoggedProcess,
  ProcessGroup,
  startApiProcess,
  startDeviceAgent,
} from '../support/processes';
import { within } from '../support/eventually';

/** `npm start` on a bare machine: no DATABASE_URL, no MQTT_URL. */
describe('the API with no DATABASE_URL and no MQTT_URL', () => {
  const procs = new ProcessGroup();
  let api: ApiProcess;
  let token: string;
  let device: DeviceWithCredentials;
  let agent: LoggedProcess;

  const command = (path: string) =>
    request(api.url).post(`/v1/_/devices/${device.id}/vpn/${path}`).set(bearer(token));

  beforeAll(async () => {
    // Embedded Postgres runs initdb on first start: several seconds.
    api = procs.api(await startApiProcess({ DATABASE_URL: '', MQTT_URL: '' }));
    token = await login(api);
  }, 180_000);

  afterAll(() => procs.stopAll(), 60_000);

  it('should start embedded Postgres and the embedded broker and report ready', async () => {
    expect(api.env.DATABASE_URL).toBeUndefined();
    expect(api.env.MQTT_URL).toBeUndefined();
    await api.waitFor('starting embedded PostgreSQL', 1000);
    await api.waitFor('embedded MQTT broker listening', 1000);
    const ready = await request(api.url).get('/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ok', database: 'up', mqtt: 'up' });
  });

  it('should connect and disconnect the tunnel of a real agent', async () => {
    device = await createDeviceWithCredentials(api, token);
    agent = procs.agent(await startDeviceAgent(api, device));
    await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');

    const up = await command('_connect');
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({ connected: true, ipAddress: device.tunnelAddress });
    const down = await command('_disconnect');
    expect(down.status).toBe(200);
    expect(down.body).toMatchObject({ connected: false, ipAddress: '0.0.0.0' });
  });

  it('should exit 0 on SIGTERM and keep its data when restarted on the same DATA_DIR', async () => {
    const mark = agent.lines.length;
    expect(await api.stop('SIGTERM')).toBe(0);

    api = await procs.restartApi(api);
    token = await login(api);
    expect(await getDevice(api, token, '_', device.id)).toMatchObject({
      clientId: device.clientId,
      tunnelAddress: device.tunnelAddress,
    });
    // The agent lost the embedded broker with the API and found it again on the same MQTT_PORT.
    await agent.waitFor('reconnected, BIRTH published', 15_000, mark);
    await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
    const up = await command('_connect');
    expect(up.status).toBe(200);
    expect(up.body).toMatchObject({ connected: true, ipAddress: device.tunnelAddress });
  }, 180_000);

  it('should refuse to start a second instance on an MQTT_PORT in use, naming MQTT_PORT and MQTT_URL', async () => {
    const second = procs.api(
      await startApiProcess({ MQTT_URL: '', MQTT_PORT: api.env.MQTT_PORT }, { waitReady: false }),
    );
    const code = await within('the second instance to exit', second.exited, 60_000);
    expect(code).not.toBe(0);
    expect(code).not.toBeNull();
    const message = second.lines.find((l) => l.includes('MQTT_PORT'));
    expect(message).toContain('MQTT_URL');
    // The first instance is unaffected.
    expect((await request(api.url).get('/health/ready')).status).toBe(200);
  });
});
