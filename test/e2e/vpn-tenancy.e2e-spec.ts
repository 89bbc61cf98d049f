import request from 'supertest';
import { bearer, expectError, login } from '../support/http';
import { createTenant, createUser, type Tenant } from '../support/factories';
import {
  createDeviceWithCredentials,
  type DeviceWithCredentials,
  listOperations,
  waitForConnectionStatus,
} from '../support/device-factories';
import { type ApiProcess, ProcessGroup, startApiProcess, startDeviceAgent } from '../support/processes';

/** Tenant A owns a device with a live agent; tenant B is a sibling account with its own admin. */
describe('device VPN across tenants and roles', () => {
  const procs = new ProcessGroup();
  let api: ApiProcess;
  let tenantA: Tenant;
  let tenantB: Tenant;
  let device: DeviceWithCredentials;

  const as = (token: string) => ({
    get: (path: string) => request(api.url).get(path).set(bearer(token)),
    post: (path: string) => request(api.url).post(path).set(bearer(token)),
  });

  beforeAll(async () => {
    api = procs.api(await startApiProcess());
    const root = await login(api);
    [tenantA, tenantB] = await Promise.all([createTenant(api, root), createTenant(api, root)]);
    device = await createDeviceWithCredentials(api, tenantA.admin.token);
    procs.agent(await startDeviceAgent(api, device));
    await waitForConnectionStatus(api, tenantA.admin.token, '_', device.id, 'CONNECTED');
  }, 120_000);

  afterAll(() => procs.stopAll());

  describe("another tenant's admin", () => {
    const reads = ['', '/vpn', '/operations'];
    const commands = ['/vpn/_connect', '/vpn/_disconnect', '/vpn/_discconect'];

    it.each(reads)('should get 404 reading device%s through its own scope (_)', async (path) => {
      expectError(await as(tenantB.admin.token).get(`/v1/_/devices/${device.id}${path}`), 404, 'NOT_FOUND');
    });

    it.each(reads)("should get 403 reading device%s through the owner's scope id", async (path) => {
      const res = await as(tenantB.admin.token).get(`/v1/${tenantA.account.id}/devices/${device.id}${path}`);
      expectError(res, 403, 'FORBIDDEN');
    });

    it.each(commands)('should get 404 sending %s through its own scope (_)', async (path) => {
      expectError(await as(tenantB.admin.token).post(`/v1/_/devices/${device.id}${path}`), 404, 'NOT_FOUND');
    });

    it.each(commands)("should get 403 sending %s through the owner's scope id", async (path) => {
      const res = await as(tenantB.admin.token).post(`/v1/${tenantA.account.id}/devices/${device.id}${path}`);
      expectError(res, 403, 'FORBIDDEN');
    });

    it("should not find the device in its own device list, and leave the owner's records untouched", async () => {
      const list = await as(tenantB.admin.token).get('/v1/_/devices?limit=500').expect(200);
      expect((list.body.items as Array<{ id: string }>).map((d) => d.id)).not.toContain(device.id);
      // Nothing B tried reached the device: no operation was recorded.
      const ops = await listOperations(api, tenantA.admin.token, '_', device.id);
      expect(ops.filter((o) => o.requestedBy === tenantB.admin.id)).toEqual([]);
    });
  });

  describe('roles inside the owning tenant', () => {
    it('should refuse _connect and _disconnect to a viewer with 403, and let it read the status', async () => {
      const viewer = await createUser(api, tenantA.admin.token, tenantA.account.id, 'viewer');
      expectError(await as(viewer.token).post(`/v1/_/devices/${device.id}/vpn/_connect`), 403, 'FORBIDDEN');
      expectError(
        await as(viewer.token).post(`/v1/_/devices/${device.id}/vpn/_disconnect`),
        403,
        'FORBIDDEN',
      );
      const status = await as(viewer.token).get(`/v1/_/devices/${device.id}/vpn`);
      expect(status.status).toBe(200);
      expect(status.body).toMatchObject({ deviceConnection: 'CONNECTED' });
      const ops = await listOperations(api, tenantA.admin.token, '_', device.id);
      expect(ops.filter((o) => o.requestedBy === viewer.id)).toEqual([]);
    });

    it('should let an operator _connect and _disconnect, recorded under its user id', async () => {
      const operator = await createUser(api, tenantA.admin.token, tenantA.account.id, 'operator');
      const up = await as(operator.token).post(`/v1/_/devices/${device.id}/vpn/_connect`);
      expect(up.status).toBe(200);
      expect(up.body).toMatchObject({ connected: true, ipAddress: device.tunnelAddress });
      const down = await as(operator.token).post(`/v1/_/devices/${device.id}/vpn/_disconnect`);
      expect(down.status).toBe(200);
      expect(down.body).toMatchObject({ connected: false, ipAddress: '0.0.0.0' });
      const ops = await listOperations(api, operator.token, '_', device.id);
      expect(ops.slice(0, 2)).toMatchObject([
        { command: 'disconnect', status: 'COMPLETED', requestedBy: operator.id },
        { command: 'connect', status: 'COMPLETED', requestedBy: operator.id },
      ]);
    });
  });
});
