import request from 'supertest';
import { eventually, holds } from '../support/eventually';
import { bearer, expectError, login } from '../support/http';
import { createTenant } from '../support/factories';
import {
  createDeviceWithCredentials,
  type DeviceWithCredentials,
  getVpnStatus,
  listOperations,
  waitForConnectionStatus,
} from '../support/device-factories';
import { type ApiProcess, ProcessGroup, startApiProcess, startDeviceAgent } from '../support/processes';

describe('device VPN commands when the device fails', () => {
  const procs = new ProcessGroup();
  let api: ApiProcess;
  let token: string;

  const command = (device: DeviceWithCredentials, path: string) =>
    request(api.url).post(`/v1/_/devices/${device.id}/vpn/${path}`).set(bearer(token));

  beforeAll(async () => {
    api = procs.api(await startApiProcess());
    const tenant = await createTenant(api, await login(api));
    token = tenant.admin.token;
  }, 120_000);

  afterAll(() => procs.stopAll());

  it('should mark the device MISSING when its agent is killed and refuse commands with 409 DEVICE_NOT_CONNECTED', async () => {
    const device = await createDeviceWithCredentials(api, token);
    const agent = procs.agent(await startDeviceAgent(api, device));
    await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');

    await agent.stop('SIGKILL');
    await waitForConnectionStatus(api, token, '_', device.id, 'MISSING');

    // A long timeout: the answer must not wait for it.
    expectError(await command(device, '_connect?timeout=60000'), 409, 'DEVICE_NOT_CONNECTED');
    expectError(await command(device, '_disconnect?timeout=60000'), 409, 'DEVICE_NOT_CONNECTED');
    expect(await getVpnStatus(api, token, '_', device.id)).toMatchObject({ deviceConnection: 'MISSING' });
  });

  it('should answer 504 DEVICE_TIMEOUT and record a TIMEOUT operation when the device never answers', async () => {
    const device = await createDeviceWithCredentials(api, token);
    procs.agent(await startDeviceAgent(api, device, ['--fail-mode', 'timeout']));
    await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');

    expectError(await command(device, '_connect?timeout=1500'), 504, 'DEVICE_TIMEOUT');
    const [op] = await listOperations(api, token, '_', device.id);
    expect(op).toMatchObject({ command: 'connect', status: 'TIMEOUT', responseCode: null });
    expect(op.endedOn).not.toBeNull();
  });

  it("should answer 502 DEVICE_ERROR with the device's message and record a FAILED operation when the tunnel fails", async () => {
    const device = await createDeviceWithCredentials(api, token);
    procs.agent(await startDeviceAgent(api, device, ['--fail-mode', 'connect']));
    await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');

    const res = await command(device, '_connect');
    expectError(res, 502, 'DEVICE_ERROR');
    expect(res.body.details).toMatch(/simulated failure/);
    const [op] = await listOperations(api, token, '_', device.id);
    expect(op).toMatchObject({
      command: 'connect',
      status: 'FAILED',
      responseCode: 500,
      errorMessage: res.body.details,
    });
    expect(await getVpnStatus(api, token, '_', device.id)).toMatchObject({
      connected: false,
      ipAddress: '0.0.0.0',
    });
  });

  it('should fail a command in flight with 409 (not wait for its timeout) when the agent is killed', async () => {
    const device = await createDeviceWithCredentials(api, token);
    const agent = procs.agent(await startDeviceAgent(api, device, ['--fail-mode', 'timeout']));
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
    await agent.stop('SIGKILL');

    const res = await inFlight;
    expectError(res, 409, 'DEVICE_NOT_CONNECTED');
    const [op] = await listOperations(api, token, '_', device.id);
    expect(op).toMatchObject({ command: 'connect', status: 'FAILED' });
    expect(op.endedOn).not.toBeNull();
    await waitForConnectionStatus(api, token, '_', device.id, 'MISSING');
  });

  it('should answer a command in flight with 502 DEVICE_ERROR (not wait for its timeout) when the agent stops cleanly', async () => {
    const device = await createDeviceWithCredentials(api, token);
    const agent = procs.agent(await startDeviceAgent(api, device, ['--fail-mode', 'timeout']));
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
    // RUNNING only says the command was sent; the agent reports `connecting` once it has it.
    await eventually(
      async () =>
        holds(
          'the agent to report connecting',
          await getVpnStatus(api, token, '_', device.id),
          (s) => s.status === 'connecting',
        ),
      15_000,
      100,
    );
    // The agent aborts the hanging connect and answers it before its DC.
    expect(await agent.stop('SIGTERM')).toBe(0);

    expectError(await inFlight, 502, 'DEVICE_ERROR');
    const [op] = await listOperations(api, token, '_', device.id);
    expect(op).toMatchObject({ command: 'connect', status: 'FAILED' });
    await waitForConnectionStatus(api, token, '_', device.id, 'DISCONNECTED');
  });

  it('should refuse commands to a disabled device with 409', async () => {
    const device = await createDeviceWithCredentials(api, token);
    procs.agent(await startDeviceAgent(api, device));
    await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
    const current = await request(api.url).get(`/v1/_/devices/${device.id}`).set(bearer(token)).expect(200);
    await request(api.url)
      .put(`/v1/_/devices/${device.id}`)
      .set(bearer(token))
      .send({ status: 'DISABLED', optlock: current.body.optlock })
      .expect(200);

    expectError(await command(device, '_connect'), 409, 'CONFLICT');
    expect(await listOperations(api, token, '_', device.id)).toEqual([]);
  });

  it('should mark the device DISCONNECTED and its tunnel down when the agent stops cleanly', async () => {
    const device = await createDeviceWithCredentials(api, token);
    const agent = procs.agent(await startDeviceAgent(api, device));
    await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
    expect((await command(device, '_connect')).body).toMatchObject({ connected: true });

    expect(await agent.stop('SIGTERM')).toBe(0);
    await waitForConnectionStatus(api, token, '_', device.id, 'DISCONNECTED');
    await eventually(
      async () =>
        holds(
          'the tunnel-down report of the clean stop',
          await getVpnStatus(api, token, '_', device.id),
          (s) => !s.connected,
        ),
      15_000,
      100,
    );
    expectError(await command(device, '_connect'), 409, 'DEVICE_NOT_CONNECTED');
  });
});
