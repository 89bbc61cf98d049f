import { connectAsync, type MqttClient } from 'mqtt';
import { Client } from 'pg';
import request from 'supertest';
import {
  birthMetrics,
  buildCommandReply,
  decodeKuraPayload,
  deviceCommandSubscription,
  encodeKuraPayload,
  readCommandRequest,
  StatusCodes,
  Topics,
} from '@app/protocol';
import { MosquittoDynsecBroker } from '../../apps/api/src/mqtt/brokers/mosquitto-dynsec';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { eventually } from '../support/eventually';
import {
  closed,
  connectAnonymous,
  connectDevice,
  createDevice,
  endAll,
  getDevice,
  issueCredentials,
  kuraBytes,
  listEvents,
  publishBirth,
  publishDc,
  subscribeGranted,
  type DeviceBody,
  type DeviceCredentials,
} from '../support/device-factories';
import { createTenant, type Tenant } from '../support/factories';
import { bearer, login } from '../support/http';
import { startMosquittoDynsec, type MosquittoDynsec } from '../support/mosquitto-dynsec';
import { startTestApi, type TestApi } from '../support/test-api';

/** The broker refused the CONNECT (3.1.1 return code 4 bad credentials or 5 not authorised). */
async function expectRefused(connecting: Promise<MqttClient>): Promise<void> {
  let client: MqttClient | undefined;
  try {
    client = await connecting;
  } catch (err) {
    expect([4, 5]).toContain((err as { code?: number }).code);
    return;
  }
  await endAll(client);
  throw new Error('the broker accepted a connection it should have refused');
}

/** Sends dynsec commands as the broker's admin and returns the responses (to look at the broker). */
async function dynsec(broker: MosquittoDynsec, commands: object[]): Promise<Array<Record<string, unknown>>> {
  const client = await connectAsync(broker.url, {
    username: broker.adminUsername,
    password: broker.adminPassword,
    clientId: `test-admin-${Math.random().toString(16).slice(2)}`,
    reconnectPeriod: 0,
  });
  try {
    const answer = new Promise<Array<Record<string, unknown>>>((resolve) =>
      client.on('message', (_t, p) => resolve((JSON.parse(p.toString()) as { responses: [] }).responses)),
    );
    await client.subscribeAsync('$CONTROL/dynamic-security/v1/response');
    await client.publishAsync('$CONTROL/dynamic-security/v1', JSON.stringify({ commands }), { qos: 1 });
    return await answer;
  } finally {
    await client.endAsync();
  }
}

async function brokerUsernames(broker: MosquittoDynsec): Promise<string[]> {
  const [r] = await dynsec(broker, [{ command: 'listClients' }]);
  return (r.data as { clients: string[] }).clients;
}

describe('Mosquitto with dynamic security (MQTT_BROKER_KIND=mosquitto-dynsec)', () => {
  let broker: MosquittoDynsec;
  let db: TestDatabase;
  let api: TestApi;
  let tenant: Tenant;
  let token: string;
  const clients: MqttClient[] = [];

  // The test owns the database, so the API can be restarted on the same data.
  const startApi = () => startTestApi({ ...broker.apiEnv, MQTT_CLEAN_SESSION: 'true' }, { database: db });

  /** A device with credentials; its client connects with the full client id `{account}:{clientId}`. */
  const provision = async (): Promise<{ device: DeviceBody; creds: DeviceCredentials }> => {
    const device = await createDevice(api, token);
    const creds = await issueCredentials(api, token, '_', device.id);
    return { device, creds };
  };
  const connect = async (creds: DeviceCredentials, opts: Parameters<typeof connectDevice>[2] = {}) => {
    const client = await connectDevice(api, creds, {
      clientId: `${creds.account}:${creds.clientId}`,
      ...opts,
    });
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    broker = await startMosquittoDynsec();
    db = await createTestDatabase();
    api = await startApi();
    const rootToken = await login(api);
    tenant = await createTenant(api, rootToken);
    token = tenant.admin.token;
  });

  afterEach(async () => {
    await endAll(...clients.splice(0));
  });

  afterAll(async () => {
    await api?.stop();
    await db?.drop();
    await broker?.stop();
  });

  it('should let a provisioned device connect with its full client id and use its own topics only', async () => {
    const { device, creds } = await provision();
    const client = await connect(creds);
    expect(
      await subscribeGranted(client, [
        deviceCommandSubscription(creds.account, creds.clientId),
        '#',
        '$EDC/#',
        `$EDC/${creds.account}/+/#`,
        `${creds.account}/${creds.clientId}/#`,
      ]),
    ).toEqual([1, 128, 128, 128, 128]);
    await publishBirth(client, creds.account, creds.clientId);
    await eventually(async () =>
      expect((await getDevice(api, token, '_', device.id)).connectionStatus).toBe('CONNECTED'),
    );
  });

  it('should refuse a wrong password, anonymous access and another client id', async () => {
    const { creds } = await provision();
    await expectRefused(
      connectDevice(
        api,
        { ...creds, password: `${creds.password}x` },
        {
          clientId: `${creds.account}:${creds.clientId}`,
        },
      ),
    );
    await expectRefused(connectAnonymous(api, creds.account, `${creds.account}:${creds.clientId}`));
    // The plain clientId (accepted by the embedded broker) is not the pinned one.
    await expectRefused(connectDevice(api, creds, { clientId: creds.clientId }));
    await expectRefused(connectDevice(api, creds, { clientId: `${creds.account}:other` }));
  });

  it("should not deliver what a device publishes on another device's topics", async () => {
    const attacker = await provision();
    const victim = await provision();
    const client = await connect(attacker.creds);
    const forged = kuraBytes(birthMetrics({ applicationIds: ['VPNCLIENT-V2'], modelId: 'forged' }));
    await client.publishAsync(Topics.birth(victim.creds.account, victim.creds.clientId), forged, { qos: 1 });
    // Mosquitto acknowledges a refused QoS 1 publish and drops it. The attacker's own DC, sent on
    // the same connection afterwards, is handled after the forged BIRTH would have been: once
    // the API has it, the forged message has had every chance to arrive.
    await publishDc(client, attacker.creds.account, attacker.creds.clientId);
    await eventually(async () =>
      expect((await getDevice(api, token, '_', attacker.device.id)).connectionStatus).toBe('DISCONNECTED'),
    );
    expect((await listEvents(api, token, '_', victim.device.id)).items).toEqual([]);
    expect((await getDevice(api, token, '_', victim.device.id)).modelId).toBeNull();
  });

  it("should carry the cloud's command to the device and the device's reply to the cloud", async () => {
    const { device, creds } = await provision();
    const client = await connect(creds);
    await client.subscribeAsync(deviceCommandSubscription(creds.account, creds.clientId), { qos: 1 });
    const idle = {
      connected: false,
      ipAddress: '0.0.0.0',
      status: 'idle' as const,
      statusCode: StatusCodes.NOT_APPLICABLE,
      bootId: 'boot-1',
      seq: 0,
    };
    client.on('message', (topic, payload) => {
      const req = readCommandRequest(decodeKuraPayload(payload));
      if (!req || !topic.endsWith('/EXEC/connect')) return;
      const reply = buildCommandReply({
        code: 200,
        status: {
          ...idle,
          connected: true,
          ipAddress: device.tunnelAddress,
          status: 'connected',
          statusCode: StatusCodes.ACTIVE,
          seq: 1,
        },
      });
      client.publish(
        Topics.reply(creds.account, req.requesterClientId, req.requestId),
        encodeKuraPayload(reply),
        {
          qos: 1,
        },
      );
    });
    await publishBirth(client, creds.account, creds.clientId);
    await eventually(async () =>
      expect((await getDevice(api, token, '_', device.id)).connectionStatus).toBe('CONNECTED'),
    );
    const res = await request(api.url)
      .post(`/v1/_/devices/${device.id}/vpn/_connect`)
      .query({ timeout: 10_000 })
      .set(bearer(token));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ connected: true, ipAddress: device.tunnelAddress });
  });

  it('should make a rotated password take effect: the old one is refused and its session cut', async () => {
    const { device, creds } = await provision();
    const old = await connect(creds);
    const cut = closed(old);
    const rotated = await issueCredentials(api, token, '_', device.id);
    await cut;
    await expectRefused(connectDevice(api, creds, { clientId: `${creds.account}:${creds.clientId}` }));
    const fresh = await connect(rotated);
    expect(fresh.connected).toBe(true);
  });

  it('should cut and refuse a disabled device, and let it in again once enabled', async () => {
    const { device, creds } = await provision();
    const live = await connect(creds);
    const cut = closed(live);
    const setStatus = async (status: 'ENABLED' | 'DISABLED') => {
      const current = await getDevice(api, token, '_', device.id);
      await request(api.url)
        .put(`/v1/_/devices/${device.id}`)
        .set(bearer(token))
        .send({ status, optlock: current.optlock })
        .expect(200);
    };
    await setStatus('DISABLED');
    await cut;
    await expectRefused(connectDevice(api, creds, { clientId: `${creds.account}:${creds.clientId}` }));
    await setStatus('ENABLED');
    expect((await connect(creds)).connected).toBe(true);
  });

  it('should cut and refuse a deleted device, and remove its dynsec client and role', async () => {
    const { device, creds } = await provision();
    const live = await connect(creds);
    const cut = closed(live);
    await request(api.url).delete(`/v1/_/devices/${device.id}`).set(bearer(token)).expect(204);
    await cut;
    await expectRefused(connectDevice(api, creds, { clientId: `${creds.account}:${creds.clientId}` }));
    expect(await brokerUsernames(broker)).not.toContain(creds.username);
    const [role] = await dynsec(broker, [{ command: 'getRole', rolename: `vpn-edge:${creds.username}` }]);
    expect(role.error).toBe('Role not found');
  });

  it('should reconcile at start: delete clients the database lost, report devices the broker lacks', async () => {
    const removed = await provision();
    const lost = await provision();
    const kept = await provision();
    await api.stop();
    // While the API is down: a device row disappears, and the broker loses another's client.
    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    try {
      await pg.query('DELETE FROM device WHERE id = $1', [removed.device.id]);
    } finally {
      await pg.end();
    }
    const [gone] = await dynsec(broker, [{ command: 'deleteClient', username: lost.creds.username }]);
    expect(gone.error).toBeUndefined();

    api = await startApi();
    const usernames = await brokerUsernames(broker);
    expect(usernames).not.toContain(removed.creds.username);
    expect(usernames).toContain(kept.creds.username);
    expect(api.app.get(MosquittoDynsecBroker).missingCredentials).toEqual([lost.creds.username]);
    expect((await connect(kept.creds)).connected).toBe(true);
    await expectRefused(connectDevice(api, removed.creds, { clientId: removed.creds.username }));
  });

  it('should stop the start with a message naming MQTT_USERNAME when the broker refuses the cloud', async () => {
    await expect(
      startTestApi(
        { ...broker.apiEnv, MQTT_PASSWORD: 'not-the-password', MQTT_CLEAN_SESSION: 'true' },
        { database: db },
      ),
    ).rejects.toThrow(/MQTT_USERNAME/);
  });
});
