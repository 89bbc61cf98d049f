import type { MqttClient } from 'mqtt';
import request from 'supertest';
import {
  buildCommandReply,
  decodeKuraPayload,
  encodeKuraPayload,
  metric,
  readCommandRequest,
  statusMetrics,
  Topics,
  type VpnStatusReport,
} from '@app/protocol';
import { eventually } from '../support/eventually';
import {
  connectAsDevice,
  createDevice,
  endAll,
  getDevice,
  getVpnStatus,
  listEvents,
  publishBirth,
  publishRaw,
  type DeviceBody,
} from '../support/device-factories';
import { createTenant, type Tenant } from '../support/factories';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';

/**
 * What a device writes is validated where it enters (libs/protocol): NUL and other control
 * characters, clocks gone wrong. None of it may break a database write, leave an operation
 * RUNNING or answer 500.
 */
describe('device payloads a database cannot store', () => {
  let api: TestApi;
  let tenant: Tenant;
  const clients: MqttClient[] = [];

  beforeAll(async () => {
    api = await startTestApi();
    tenant = await createTenant(api, await login(api));
  });

  afterAll(async () => {
    await endAll(...clients);
    await api?.stop();
  });

  async function onlineDevice(): Promise<{ device: DeviceBody; client: MqttClient }> {
    const device = await createDevice(api, tenant.admin.token);
    const client = await connectAsDevice(api, tenant.admin.token, '_', device, tenant.account.name);
    clients.push(client);
    await publishBirth(client, tenant.account.name, device.clientId);
    await eventually(async () =>
      expect((await getDevice(api, tenant.admin.token, '_', device.id)).connectionStatus).toBe('CONNECTED'),
    );
    return { device, client };
  }

  /** Answers every command of the device with `reply`. */
  async function answerWith(
    client: MqttClient,
    device: DeviceBody,
    reply: Parameters<typeof buildCommandReply>[0],
  ) {
    await client.subscribeAsync(`$EDC/${tenant.account.name}/${device.clientId}/VPNCLIENT-V2/#`, { qos: 1 });
    client.on('message', (topic, payload) => {
      if (!topic.includes('/EXEC/') && !topic.includes('/GET/')) return;
      const req = readCommandRequest(decodeKuraPayload(payload));
      if (!req) return;
      void client.publishAsync(
        Topics.reply(tenant.account.name, req.requesterClientId, req.requestId),
        encodeKuraPayload(buildCommandReply(reply)),
        { qos: 1 },
      );
    });
  }

  const report = (over: Partial<VpnStatusReport> = {}): VpnStatusReport => ({
    connected: false,
    ipAddress: '0.0.0.0',
    status: 'error',
    statusCode: '250',
    bootId: 'boot-1',
    seq: 1,
    ...over,
  });

  it('should answer 502 and record a FAILED operation when the error message holds NUL', async () => {
    const { device, client } = await onlineDevice();
    await answerWith(client, device, {
      code: 500,
      exceptionMessage: 'broken\u0000tunnel\u0007',
      status: report(),
    });
    const res = await request(api.url)
      .post(`/v1/_/devices/${device.id}/vpn/_connect`)
      .set(bearer(tenant.admin.token));
    expectError(res, 502, 'DEVICE_ERROR');
    expect(res.body.details).toBe('broken\ufffdtunnel\ufffd');
    const ops = await request(api.url)
      .get(`/v1/_/devices/${device.id}/operations`)
      .set(bearer(tenant.admin.token));
    expect(ops.body.items[0]).toMatchObject({
      status: 'FAILED',
      responseCode: 500,
      errorMessage: 'broken\ufffdtunnel\ufffd',
    });
  });

  it('should complete the command and keep the stored status when the reply status has a NUL in its boot id', async () => {
    const { device, client } = await onlineDevice();
    await answerWith(client, device, {
      code: 200,
      status: report({
        connected: true,
        ipAddress: device.tunnelAddress,
        status: 'connected',
        statusCode: '004',
        bootId: 'bo\u0000ot',
      }),
    });
    const res = await request(api.url)
      .post(`/v1/_/devices/${device.id}/vpn/_connect`)
      .set(bearer(tenant.admin.token));
    expect(res.status).toBe(200);
    // The status in the reply was not valid, so nothing was stored from it.
    expect(await getVpnStatus(api, tenant.admin.token, '_', device.id)).toMatchObject({ reportedOn: null });
    const ops = await request(api.url)
      .get(`/v1/_/devices/${device.id}/operations`)
      .set(bearer(tenant.admin.token));
    expect(ops.body.items[0]).toMatchObject({ status: 'COMPLETED', responseCode: 200 });
  });

  it('should store a status report whose timestamp is out of any calendar, without its send time', async () => {
    const { device, client } = await onlineDevice();
    const payload = encodeKuraPayload({ timestamp: -8.64e15, metrics: statusMetrics(report({ seq: 7 })) });
    await publishRaw(client, Topics.status(tenant.account.name, device.clientId), payload);
    await eventually(async () =>
      expect(await getVpnStatus(api, tenant.admin.token, '_', device.id)).toMatchObject({
        statusCode: '250',
      }),
    );
    const events = await listEvents(api, tenant.admin.token, '_', device.id);
    const status = events.items.find((e) => e.type === 'VPN_STATUS');
    expect(status?.sentOn).toBeNull();
  });

  it('should store a BIRTH whose profile strings hold control characters, with them replaced', async () => {
    const device = await createDevice(api, tenant.admin.token);
    const client = await connectAsDevice(api, tenant.admin.token, '_', device, tenant.account.name);
    clients.push(client);
    const payload = encodeKuraPayload({
      timestamp: 8.64e15 + 1,
      metrics: [
        metric.string('display_name', 'Pump\u0000 1'),
        metric.string('serial_number', 'SN\u001b[31m'),
        metric.string('application_ids', 'VPNCLIENT-V2'),
      ],
    });
    await publishRaw(client, Topics.birth(tenant.account.name, device.clientId), payload);
    const stored = await eventually(async () => {
      const d = await getDevice(api, tenant.admin.token, '_', device.id);
      expect(d.connectionStatus).toBe('CONNECTED');
      return d;
    });
    expect(stored).toMatchObject({ displayName: 'Pump\ufffd 1', serialNumber: 'SN\ufffd[31m' });
  });
});
