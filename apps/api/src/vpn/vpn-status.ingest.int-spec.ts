import type { MqttClient } from 'mqtt';
import type { VpnStatusReport } from '@app/protocol';
import { eventually } from '../../../../test/support/eventually';
import {
  connectAsDevice,
  createDevice,
  endAll,
  getDevice,
  getVpnStatus,
  listEvents,
  publishBirth,
  publishStatus,
  type DeviceBody,
} from '../../../../test/support/device-factories';
import { createTenant, type Tenant } from '../../../../test/support/factories';
import { login } from '../../../../test/support/http';
import { startTestApi, type TestApi } from '../../../../test/support/test-api';
import { VpnStatusIngest } from './vpn-status.ingest';

/** Status reports through the broker: bursts are written in batches, each device's reports in order. */
describe('VPN status ingestion', () => {
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

  /** Connects as the device and publishes its BIRTH: a status counts only for a device that is there. */
  const connect = async (device: DeviceBody): Promise<MqttClient> => {
    const client = await connectAsDevice(api, tenant.admin.token, '_', device, tenant.account.name);
    clients.push(client);
    await publishBirth(client, tenant.account.name, device.clientId);
    await eventually(async () =>
      expect((await getDevice(api, tenant.admin.token, '_', device.id)).connectionStatus).toBe('CONNECTED'),
    );
    return client;
  };
  const report = (seq: number, connected = seq % 2 === 0): VpnStatusReport => ({
    connected,
    ipAddress: connected ? '10.200.0.7' : '0.0.0.0',
    status: connected ? 'connected' : 'idle',
    statusCode: connected ? '004' : '003',
    bootId: 'boot-1',
    seq,
  });
  const eventSeqs = async (device: DeviceBody): Promise<unknown[]> =>
    (await listEvents(api, tenant.admin.token, '_', device.id)).items
      .filter((e) => e.type === 'VPN_STATUS')
      .map((e) => e.details.seq)
      .reverse();

  it('should store a burst of several devices, each device in order, ignoring stale reports', async () => {
    const ingest = api.app.get(VpnStatusIngest);
    const appliedBefore = ingest.applied;
    const devices = await Promise.all([1, 2, 3].map(() => createDevice(api, tenant.admin.token)));
    const [a, b, c] = await Promise.all(devices.map(connect));
    const [da, db, dc] = devices;
    // a: seq 1..10, each a change, then a replay and an older report; b and c: one report each.
    const sends: Array<Promise<void>> = [];
    for (let seq = 1; seq <= 10; seq++)
      sends.push(publishStatus(a, tenant.account.name, da.clientId, report(seq)));
    sends.push(publishStatus(a, tenant.account.name, da.clientId, report(5)));
    sends.push(publishStatus(a, tenant.account.name, da.clientId, report(3, true)));
    sends.push(publishStatus(b, tenant.account.name, db.clientId, report(1, true)));
    sends.push(publishStatus(c, tenant.account.name, dc.clientId, report(4, false)));
    await Promise.all(sends);

    await eventually(() => expect(ingest.applied - appliedBefore).toBe(14));
    expect(ingest.inFlight).toBe(0);
    expect(await eventSeqs(da)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(await getVpnStatus(api, tenant.admin.token, '_', da.id)).toMatchObject({
      connected: true,
      status: 'connected',
    });
    expect(await eventSeqs(db)).toEqual([1]);
    expect(await getVpnStatus(api, tenant.admin.token, '_', db.id)).toMatchObject({ connected: true });
    expect(await eventSeqs(dc)).toEqual([4]);
    expect(await getVpnStatus(api, tenant.admin.token, '_', dc.id)).toMatchObject({
      connected: false,
      status: 'idle',
    });
  });
});
