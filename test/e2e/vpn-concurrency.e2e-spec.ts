import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { eventually, holds } from '../support/eventually';
import { bearer, login } from '../support/http';
import { createTenant } from '../support/factories';
import {
  createDeviceWithCredentials,
  type DeviceWithCredentials,
  getVpnStatus,
  listOperations,
} from '../support/device-factories';
import { type ApiProcess, ProcessGroup, startApiProcess, startFleetProcess } from '../support/processes';

const DEVICES = 20;

describe('device VPN commands sent concurrently', () => {
  const procs = new ProcessGroup();
  let api: ApiProcess;
  let token: string;
  let devices: DeviceWithCredentials[];
  let credentialsDir: string | undefined;

  const command = (device: DeviceWithCredentials, path: string) =>
    request(api.url).post(`/v1/_/devices/${device.id}/vpn/${path}`).set(bearer(token));

  beforeAll(async () => {
    api = procs.api(await startApiProcess());
    const tenant = await createTenant(api, await login(api));
    token = tenant.admin.token;
    devices = await Promise.all(
      Array.from({ length: DEVICES }, () => createDeviceWithCredentials(api, token)),
    );

    // One `vpn-agent simulate` process runs the 20 devices, each with its own MQTT link.
    credentialsDir = mkdtempSync(join(tmpdir(), 'vpncloud-e2e-fleet-'));
    const credentialsFile = join(credentialsDir, 'credentials.json');
    writeFileSync(credentialsFile, JSON.stringify(devices.map((d) => d.credentials)), { mode: 0o600 });
    procs.agent(
      await startFleetProcess({
        broker: api.mqttUrl,
        account: tenant.account.name,
        credentialsFile,
        count: DEVICES,
        args: ['--connect-delay-ms', '100'],
      }),
    );
    await eventually(
      async () =>
        holds(
          `all ${DEVICES} devices to be CONNECTED`,
          await (async () => {
            const res = await request(api.url)
              .get('/v1/_/devices?connectionStatus=CONNECTED&limit=100')
              .set(bearer(token));
            return res.body.size as number;
          })(),
          (connected) => connected === DEVICES,
        ),
      15_000,
      100,
    );
  }, 120_000);

  afterAll(async () => {
    await procs.stopAll();
    if (credentialsDir) rmSync(credentialsDir, { recursive: true, force: true });
  });

  it(`should connect ${DEVICES} devices commanded at once, each on its own tunnel address`, async () => {
    const responses = await Promise.all(devices.map((d) => command(d, '_connect')));

    responses.forEach((res, i) => {
      expect({ clientId: devices[i].clientId, status: res.status, body: res.body }).toMatchObject({
        status: 200,
        body: { connected: true, ipAddress: devices[i].tunnelAddress, deviceConnection: 'CONNECTED' },
      });
    });
    const addresses = new Set(responses.map((r) => r.body.ipAddress as string));
    expect(addresses.size).toBe(DEVICES);
    for (const d of devices) {
      expect(await getVpnStatus(api, token, '_', d.id)).toMatchObject({
        connected: true,
        ipAddress: d.tunnelAddress,
      });
    }
  });

  it('should run commands sent at once to one device one after the other, never overlapping', async () => {
    const device = devices[0];
    const responses = await Promise.all([
      command(device, '_disconnect'),
      command(device, '_connect'),
      command(device, '_disconnect'),
    ]);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200]);

    const ops = (await listOperations(api, token, '_', device.id))
      .slice(0, responses.length)
      .sort((a, b) => Date.parse(a.startedOn) - Date.parse(b.startedOn));
    expect(ops.map((o) => o.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);
    for (let i = 1; i < ops.length; i++) {
      expect(ops[i - 1].endedOn).not.toBeNull();
      expect(Date.parse(ops[i].startedOn)).toBeGreaterThanOrEqual(Date.parse(ops[i - 1].endedOn ?? ''));
    }
  });
});
