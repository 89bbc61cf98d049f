import request from 'supertest';
import { bearer, expectError, login, userIdOf } from '../support/http';
import { createTenant } from '../support/factories';
import {
  createDeviceWithCredentials,
  type DeviceWithCredentials,
  getVpnStatus,
  listOperations,
  waitForConnectionStatus,
} from '../support/device-factories';
import { type ApiProcess, ProcessGroup, startApiProcess, startDeviceAgent } from '../support/processes';

describe('device VPN lifecycle through a real agent', () => {
  const procs = new ProcessGroup();
  let api: ApiProcess;
  let token: string;
  let device: DeviceWithCredentials;

  const post = (path: string) =>
    request(api.url).post(`/v1/_/devices/${device.id}/vpn/${path}`).set(bearer(token));

  beforeAll(async () => {
    api = procs.api(await startApiProcess());
    const tenant = await createTenant(api, await login(api));
    token = tenant.admin.token;
    device = await createDeviceWithCredentials(api, token);
    procs.agent(await startDeviceAgent(api, device));
    // 'agent ready' means the broker took the BIRTH; the API applies it asynchronously.
    await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
  }, 120_000);

  afterAll(() => procs.stopAll());

  it('should connect the tunnel and answer with the device tunnel address', async () => {
    const res = await post('_connect');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      connected: true,
      ipAddress: device.tunnelAddress,
      status: 'connected',
      deviceConnection: 'CONNECTED',
    });
    expect(await getVpnStatus(api, token, '_', device.id)).toMatchObject({
      connected: true,
      ipAddress: device.tunnelAddress,
      deviceConnection: 'CONNECTED',
    });
  });

  it('should disconnect the tunnel and report ipAddress 0.0.0.0', async () => {
    expect((await post('_connect')).status).toBe(200);
    const res = await post('_disconnect');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ connected: false, ipAddress: '0.0.0.0', deviceConnection: 'CONNECTED' });
    expect(await getVpnStatus(api, token, '_', device.id)).toMatchObject({
      connected: false,
      ipAddress: '0.0.0.0',
    });
  });

  it('should disconnect through the misspelt _discconect alias like _disconnect', async () => {
    const up = await post('_connect');
    expect(up.body).toMatchObject({ connected: true, ipAddress: device.tunnelAddress });
    const res = await post('_discconect');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ connected: false, ipAddress: '0.0.0.0' });
    expect(await getVpnStatus(api, token, '_', device.id)).toMatchObject({
      connected: false,
      ipAddress: '0.0.0.0',
    });
    const [latest] = await listOperations(api, token, '_', device.id);
    expect(latest).toMatchObject({ command: 'disconnect', status: 'COMPLETED' });
  });

  it('should list every command as a COMPLETED operation with requestedBy and durationMs', async () => {
    expect((await post('_connect')).status).toBe(200);
    expect((await post('_disconnect')).status).toBe(200);
    const ops = await listOperations(api, token, '_', device.id);
    expect(ops.map((o) => o.command)).toEqual(expect.arrayContaining(['connect', 'disconnect']));
    for (const op of ops) {
      expect(op).toMatchObject({
        deviceId: device.id,
        status: 'COMPLETED',
        requestedBy: userIdOf(token),
        responseCode: 200,
        errorMessage: null,
      });
      expect(typeof op.durationMs).toBe('number');
      expect(op.durationMs).toBeGreaterThanOrEqual(0);
      expect(op.endedOn).not.toBeNull();
    }
    // Newest first: the disconnect just sent heads the list.
    expect(ops[0].command).toBe('disconnect');
  });

  it.each(['5', 'abc', '300001'])(
    'should answer 400 to _connect?timeout=%s and send nothing',
    async (timeout) => {
      const before = await listOperations(api, token, '_', device.id);
      const res = await post(`_connect?timeout=${timeout}`);
      expectError(res, 400, 'INVALID_ARGUMENT');
      expect(await listOperations(api, token, '_', device.id)).toHaveLength(before.length);
    },
  );

  it('should accept a timeout inside the bounds', async () => {
    const res = await post('_disconnect?timeout=10000');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ connected: false, ipAddress: '0.0.0.0' });
  });
});
