import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { buildCommandReply, encodeKuraPayload, Topics } from '@app/protocol';
import { eventually } from '../support/eventually';
import { createDevice, getVpnStatus, type DeviceBody } from '../support/device-factories';
import { createTenant, type Tenant } from '../support/factories';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';
import { SimDevice } from '../gateways/gateway-fixtures';
import type { components } from '../generated/api-types';

type OperationBody = components['schemas']['DeviceOperationDto'];

describe('asynchronous VPN commands (POST …/vpn/_connect?async=true)', () => {
  let api: TestApi;
  let tenant: Tenant;
  let other: Tenant;
  let token: string;
  let device: DeviceBody;
  let sim: SimDevice;

  const post = (path: string, query: Record<string, string | number | boolean>, tok = token) =>
    request(api.url).post(`/v1/_/devices/${device.id}/vpn/${path}`).query(query).set(bearer(tok));

  const operations = async () =>
    (await request(api.url).get(`/v1/_/devices/${device.id}/operations`).set(bearer(token))).body as {
      items: OperationBody[];
    };

  /** Polls the operation's URL until it leaves RUNNING. */
  const settled = (location: string) =>
    eventually(async () => {
      const res = await request(api.url).get(location).set(bearer(token));
      expect(res.status).toBe(200);
      expect(res.body.status).not.toBe('RUNNING');
      return res.body as OperationBody;
    }, 10_000);

  beforeAll(async () => {
    api = await startTestApi();
    const rootToken = await login(api);
    tenant = await createTenant(api, rootToken);
    other = await createTenant(api, rootToken);
    token = tenant.admin.token;
    device = await createDevice(api, token);
    sim = await SimDevice.start(api, token, '_', device, tenant.account.name, { publicKey: null });
  });

  afterAll(async () => {
    await sim?.close();
    await api?.stop();
  });

  it('should answer 202 with the RUNNING operation and its Location, then reach COMPLETED', async () => {
    // The device answers only after the HTTP answer went out: the command outlives the request.
    let answer: (() => void) | undefined;
    const answered = new Promise<void>((resolve) => (answer = resolve));
    const agentReply = sim.respond;
    sim.respond = () => null;
    sim.onCommand = (c) => {
      sim.onCommand = undefined;
      void answered.then(() => {
        sim.respond = agentReply;
        const reply = agentReply(c);
        if (reply) {
          sim.mqtt.publish(
            Topics.reply(tenant.account.name, c.requesterClientId, c.requestId),
            encodeKuraPayload(buildCommandReply(reply)),
            { qos: 1 },
          );
        }
      });
    };
    const res = await post('_connect', { async: true });
    expect(res.status).toBe(202);
    const op = res.body as OperationBody;
    expect(op).toMatchObject({ deviceId: device.id, command: 'connect', status: 'RUNNING', endedOn: null });
    expect(res.headers.location).toBe(`/v1/${tenant.account.id}/devices/${device.id}/operations/${op.id}`);
    // Still running: the device has not answered yet.
    const running = await request(api.url).get(res.headers.location).set(bearer(token));
    expect(running.body).toMatchObject({ id: op.id, status: 'RUNNING' });
    answer!();
    const done = await settled(res.headers.location);
    expect(done).toMatchObject({ id: op.id, status: 'COMPLETED', responseCode: 200, errorMessage: null });
    expect(await getVpnStatus(api, token, '_', device.id)).toMatchObject({
      connected: true,
      status: 'connected',
    });
  });

  it('should record a timeout on the operation when the device never answers', async () => {
    const agentReply = sim.respond;
    sim.respond = () => null;
    try {
      const res = await post('_disconnect', { async: 'true', timeout: 1000 });
      expect(res.status).toBe(202);
      const done = await settled(res.headers.location);
      expect(done).toMatchObject({ command: 'disconnect', status: 'TIMEOUT', responseCode: null });
      expect(done.errorMessage).toEqual(expect.any(String));
    } finally {
      sim.respond = agentReply;
    }
  });

  it('should record the device error on the operation', async () => {
    const agentReply = sim.respond;
    sim.respond = () => sim.failure('no route to the VPN server');
    try {
      const res = await post('_connect', { async: true });
      expect(res.status).toBe(202);
      const done = await settled(res.headers.location);
      expect(done).toMatchObject({
        status: 'FAILED',
        responseCode: 500,
        errorMessage: 'no route to the VPN server',
      });
    } finally {
      sim.respond = agentReply;
    }
  });

  it('should keep async=false (and no async) synchronous', async () => {
    const res = await post('_disconnect', { async: false });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ connected: false });
    expect(res.headers.location).toBeUndefined();
  });

  it('should refuse a bad async value with 400 and send nothing', async () => {
    const before = (await operations()).items.length;
    const commandsBefore = sim.commands.length;
    const res = await post('_connect', { async: 'yes' });
    expectError(res, 400, 'INVALID_ARGUMENT');
    expect(res.body.details).toContain('true, false');
    expect((await operations()).items.length).toBe(before);
    expect(sim.commands.length).toBe(commandsBefore);
  });

  it('should refuse at once, without an operation, when the device cannot take the command', async () => {
    const offline = await createDevice(api, token);
    const res = await request(api.url)
      .post(`/v1/_/devices/${offline.id}/vpn/_connect?async=true`)
      .set(bearer(token));
    expectError(res, 409, 'DEVICE_NOT_CONNECTED');
    const ops = await request(api.url).get(`/v1/_/devices/${offline.id}/operations`).set(bearer(token));
    expect(ops.body.size).toBe(0);
  });

  it("should answer 404 for an unknown operation and 403 for another tenant's scope", async () => {
    const op = (await operations()).items[0];
    expectError(
      await request(api.url).get(`/v1/_/devices/${device.id}/operations/${randomUUID()}`).set(bearer(token)),
      404,
      'NOT_FOUND',
    );
    expectError(
      await request(api.url)
        .get(`/v1/${tenant.account.id}/devices/${device.id}/operations/${op.id}`)
        .set(bearer(other.admin.token)),
      403,
      'FORBIDDEN',
    );
    // Their own scope does not hold it either.
    expectError(
      await request(api.url)
        .get(`/v1/_/devices/${device.id}/operations/${op.id}`)
        .set(bearer(other.admin.token)),
      404,
      'NOT_FOUND',
    );
    expectError(
      await request(api.url)
        .post(`/v1/_/devices/${device.id}/vpn/_connect?async=true`)
        .set(bearer(other.admin.token)),
      404,
      'NOT_FOUND',
    );
  });
});
