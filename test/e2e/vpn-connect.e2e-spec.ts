import request from 'supertest';
import {
  startAgentProcess,
  startApiProcess,
  type ApiProcess,
  type LoggedProcess,
} from '../support/processes';
import { TEST_ADMIN_PASSWORD } from '../support/test-api';
import { waitForConnectionStatus } from '../support/device-factories';

describe('device VPN through a real agent process', () => {
  let api: ApiProcess;
  let agent: LoggedProcess | undefined;
  let token: string;
  let deviceId: string;
  let tunnelAddress: string;

  beforeAll(async () => {
    api = await startApiProcess();
    const login = await request(api.url)
      .post('/v1/authentication/user')
      .send({ username: 'admin', password: TEST_ADMIN_PASSWORD })
      .expect(200);
    token = login.body.tokenId;
    const device = await request(api.url)
      .post('/v1/_/devices')
      .set('Authorization', `Bearer ${token}`)
      .send({ clientId: `gw-${Date.now()}` })
      .expect(201);
    deviceId = device.body.id;
    tunnelAddress = device.body.tunnelAddress;
    const creds = await request(api.url)
      .post(`/v1/_/devices/${deviceId}/credentials`)
      .set('Authorization', `Bearer ${token}`)
      .expect(201);
    agent = await startAgentProcess({
      broker: api.mqttUrl,
      account: creds.body.account,
      clientId: creds.body.clientId,
      username: creds.body.username,
      password: creds.body.password,
      args: ['--connect-delay-ms', '20'],
    });
    // 'agent ready' means the broker took the BIRTH; the API applies it asynchronously.
    await waitForConnectionStatus(api, token, '_', deviceId, 'CONNECTED');
  });

  afterAll(async () => {
    await agent?.stop();
    await api?.destroy();
  });

  it('should connect, report, and disconnect the tunnel', async () => {
    const auth = { Authorization: `Bearer ${token}` };
    const connected = await request(api.url)
      .post(`/v1/_/devices/${deviceId}/vpn/_connect`)
      .set(auth)
      .expect(200);
    expect(connected.body).toMatchObject({
      connected: true,
      ipAddress: tunnelAddress,
      deviceConnection: 'CONNECTED',
    });
    const read = await request(api.url).get(`/v1/_/devices/${deviceId}/vpn`).set(auth).expect(200);
    expect(read.body).toMatchObject({ connected: true, ipAddress: tunnelAddress });
    const down = await request(api.url)
      .post(`/v1/_/devices/${deviceId}/vpn/_disconnect`)
      .set(auth)
      .expect(200);
    expect(down.body).toMatchObject({ connected: false, ipAddress: '0.0.0.0' });
  });
});
