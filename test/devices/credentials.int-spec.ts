import { createHash } from 'node:crypto';
import type { MqttClient } from 'mqtt';
import { Client } from 'pg';
import request from 'supertest';
import { eventually } from '../support/eventually';
import {
  closed,
  connectAnonymous,
  connectDevice,
  createDevice,
  endAll,
  getDevice,
  issueCredentials,
  publishBirth,
  uniqueClientId,
  type DeviceCredentials,
} from '../support/device-factories';
import { createTenant, type Tenant } from '../support/factories';
import { bearer, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';

// Device auth and the topic ACL are enforced by the embedded broker; an external broker enforces
// them through its own auth hooks. So these tests always use the embedded broker (with the real
// Postgres when TEST_DATABASE_URL is set).

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

describe('device MQTT credentials (embedded broker)', () => {
  let api: TestApi;
  let rootToken: string;
  let tenant: Tenant;
  let token: string;
  const clients: MqttClient[] = [];

  /** Connects and keeps the client for cleanup. */
  const connect = async (creds: DeviceCredentials, opts: Parameters<typeof connectDevice>[2] = {}) => {
    const client = await connectDevice(api, creds, opts);
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    api = await startTestApi({}, { embeddedBroker: true });
    rootToken = await login(api);
    tenant = await createTenant(api, rootToken);
    token = tenant.admin.token;
  });

  afterAll(async () => {
    await endAll(...clients);
    await api?.stop();
  });

  it('should issue credentials that let a raw MQTT client connect as the device', async () => {
    const device = await createDevice(api, token);
    const creds = await issueCredentials(api, token, '_', device.id);
    expect(creds).toEqual({
      username: `${tenant.account.name}:${device.clientId}`,
      password: expect.any(String),
      clientId: device.clientId,
      account: tenant.account.name,
    });
    // At least 128 random bits (docs/security.md): 22 base64url characters.
    expect(creds.password.length).toBeGreaterThanOrEqual(22);

    const client = await connect(creds);
    expect(client.connected).toBe(true);
    // And it is trusted as that device: its BIRTH is applied.
    await publishBirth(client, creds.account, creds.clientId, { modelId: 'with-credentials' });
    await eventually(async () =>
      expect(await getDevice(api, token, '_', device.id)).toMatchObject({
        connectionStatus: 'CONNECTED',
        modelId: 'with-credentials',
        mqttUsername: creds.username,
        credentialsIssuedOn: expect.any(String),
      }),
    );
  });

  it('should refuse a wrong password, an unknown username and a connection without credentials', async () => {
    const device = await createDevice(api, token);
    const creds = await issueCredentials(api, token, '_', device.id);
    await expectRefused(connectDevice(api, { ...creds, password: `${creds.password}x` }));
    await expectRefused(connectDevice(api, { ...creds, password: '' }));
    await expectRefused(connectDevice(api, { ...creds, username: `${tenant.account.name}:nobody` }));
    await expectRefused(connectAnonymous(api, creds.account, creds.clientId));
    // Another device's password does not open this one.
    const other = await createDevice(api, token);
    const otherCreds = await issueCredentials(api, token, '_', other.id);
    await expectRefused(connectDevice(api, { ...creds, password: otherCreds.password }));
  });

  it('should refuse a device that never got credentials', async () => {
    const device = await createDevice(api, token);
    await expectRefused(
      connectDevice(api, {
        username: `${tenant.account.name}:${device.clientId}`,
        password: 'guessed-password',
        clientId: device.clientId,
        account: tenant.account.name,
      }),
    );
  });

  it('should refuse a client id other than the device clientId', async () => {
    const device = await createDevice(api, token);
    const sibling = await createDevice(api, token);
    const creds = await issueCredentials(api, token, '_', device.id);
    await expectRefused(connectDevice(api, creds, { clientId: sibling.clientId }));
    await expectRefused(connectDevice(api, creds, { clientId: uniqueClientId('elsewhere') }));
    await expectRefused(connectDevice(api, creds, { clientId: device.clientId.toUpperCase() }));
  });

  it('should refuse to let a device take over the session of a device of another account', async () => {
    // Client ids are unique per account only, but MQTT client ids are broker-wide.
    const clientId = uniqueClientId('shared');
    const other = await createTenant(api, rootToken);
    const mine = await createDevice(api, token, '_', { clientId });
    const theirs = await createDevice(api, other.admin.token, '_', { clientId });
    const myCreds = await issueCredentials(api, token, '_', mine.id);
    const theirCreds = await issueCredentials(api, other.admin.token, '_', theirs.id);
    const holder = await connect(myCreds);
    await expectRefused(connectDevice(api, theirCreds));
    expect(holder.connected).toBe(true);
    // Once the id is free, the other device may use it.
    await holder.endAsync();
    await connect(theirCreds);
  });

  it("should refuse a device whose clientId is the cloud's own client id", async () => {
    const cloudId = api.config.mqttClientId;
    const device = await createDevice(api, token, '_', { clientId: cloudId });
    const creds = await issueCredentials(api, token, '_', device.id);
    await expectRefused(connectDevice(api, creds));
    await request(api.url).get('/health/ready').expect(200, { status: 'ok', database: 'up', mqtt: 'up' });
  });

  it('should refuse a disabled device and close its live session when it is disabled', async () => {
    const device = await createDevice(api, token);
    const creds = await issueCredentials(api, token, '_', device.id);
    const client = await connect(creds);
    const gone = closed(client);
    // Issuing credentials changed the device (mqttUsername): read its current optlock.
    const current = await getDevice(api, token, '_', device.id);
    const disabled = await request(api.url)
      .put(`/v1/_/devices/${device.id}`)
      .set(bearer(token))
      .send({ status: 'DISABLED', optlock: current.optlock })
      .expect(200);
    await gone;
    expect(client.connected).toBe(false);
    await expectRefused(connectDevice(api, creds));

    await request(api.url)
      .put(`/v1/_/devices/${device.id}`)
      .set(bearer(token))
      .send({ status: 'ENABLED', optlock: disabled.body.optlock })
      .expect(200);
    const again = await connect(creds);
    expect(again.connected).toBe(true);
  });

  it('should refuse a device created disabled', async () => {
    const device = await createDevice(api, token, '_', { status: 'DISABLED' });
    const creds = await issueCredentials(api, token, '_', device.id);
    await expectRefused(connectDevice(api, creds));
  });

  it('should refuse the old password after rotation and close the current session', async () => {
    const device = await createDevice(api, token);
    const first = await issueCredentials(api, token, '_', device.id);
    const client = await connect(first);
    const gone = closed(client);
    const second = await issueCredentials(api, token, '_', device.id);
    expect(second.username).toBe(first.username);
    expect(second.password).not.toBe(first.password);
    await gone;
    await expectRefused(connectDevice(api, first));
    const fresh = await connect(second);
    expect(fresh.connected).toBe(true);
  });

  it('should close the session and refuse the credentials of a deleted device', async () => {
    const device = await createDevice(api, token);
    const creds = await issueCredentials(api, token, '_', device.id);
    const client = await connect(creds);
    const gone = closed(client);
    await request(api.url).delete(`/v1/_/devices/${device.id}`).set(bearer(token)).expect(204);
    await gone;
    await expectRefused(connectDevice(api, creds));
  });

  it('should never return the password from GET, list or events', async () => {
    const device = await createDevice(api, token);
    const creds = await issueCredentials(api, token, '_', device.id);
    const responses = [
      await request(api.url).get(`/v1/_/devices/${device.id}`).set(bearer(token)).expect(200),
      await request(api.url).get('/v1/_/devices').query({ limit: 500 }).set(bearer(token)).expect(200),
      await request(api.url).get(`/v1/_/devices/${device.id}/events`).set(bearer(token)).expect(200),
    ];
    for (const res of responses) {
      expect(res.text).not.toContain(creds.password);
      expect(res.text).not.toMatch(/password|digest/i);
    }
  });

  it('should keep only a SHA-256 digest of the password in the database', async () => {
    const device = await createDevice(api, token);
    const creds = await issueCredentials(api, token, '_', device.id);
    const forms = [
      creds.password,
      Buffer.from(creds.password, 'utf8').toString('hex'),
      Buffer.from(creds.password, 'utf8').toString('base64'),
    ];
    const db = new Client({ connectionString: api.db.url });
    await db.connect();
    try {
      const stored = await db.query<{ mqtt_password_digest: Buffer }>(
        'SELECT mqtt_password_digest FROM device WHERE id = $1',
        [device.id],
      );
      expect(stored.rows[0].mqtt_password_digest).toEqual(
        createHash('sha256').update(creds.password, 'utf8').digest(),
      );
      // Not in any column of any table, in clear or encoded.
      const tables = await db.query<{ table_name: string }>(
        `SELECT table_name FROM information_schema.tables
          WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`,
      );
      expect(tables.rows.map((t) => t.table_name)).toContain('device');
      for (const { table_name } of tables.rows) {
        const rows = await db.query<{ row: string }>(`SELECT t::text AS row FROM "${table_name}" t`);
        for (const { row } of rows.rows) {
          for (const form of forms) expect(row.includes(form)).toBe(false);
        }
      }
    } finally {
      await db.end();
    }
  });
});
