import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { createDevice, issueCredentials, getDevice } from '../support/device-factories';
import { createTenant, type Tenant } from '../support/factories';
import { bearer, expectError, login } from '../support/http';
import { startMosquittoDynsec, type MosquittoDynsec } from '../support/mosquitto-dynsec';
import { startTestApi, type TestApi } from '../support/test-api';

// EMQX cannot run on this machine: these tests check the contract. The auth endpoint is called
// exactly as EMQX's HTTP authenticator calls it (POST, JSON body of the configured placeholders,
// the secret header), and a small HTTP server stands in for EMQX's REST API to receive the kicks.

const SECRET = 'emqx-shared-secret-for-tests';

interface Kick {
  method: string;
  path: string;
  authorization: string | undefined;
}

describe('EMQX (MQTT_BROKER_KIND=emqx): HTTP auth endpoint and kicks through the REST API', () => {
  let broker: MosquittoDynsec;
  let emqxApi: Server;
  let kicks: Kick[];
  let kickStatus: number;
  let api: TestApi;
  let tenant: Tenant;
  let token: string;

  /** POST /internal/mqtt/auth the way EMQX does (body fields as configured in docs/brokers.md). */
  const emqxAuth = (body: unknown, secret: string | null = SECRET) => {
    const req = request(api.url).post('/internal/mqtt/auth').set('Content-Type', 'application/json');
    if (secret !== null) req.set('x-emqx-auth-secret', secret);
    return req.send(JSON.stringify(body));
  };

  beforeAll(async () => {
    kicks = [];
    kickStatus = 204;
    emqxApi = createServer((req: IncomingMessage, res) => {
      kicks.push({ method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization });
      res.statusCode = kickStatus;
      res.end();
    });
    await new Promise<void>((resolve) => emqxApi.listen(0, '127.0.0.1', resolve));
    const port = (emqxApi.address() as AddressInfo).port;
    // The cloud's own MQTT client needs some broker; a private Mosquitto stands in for EMQX's MQTT side.
    broker = await startMosquittoDynsec();
    api = await startTestApi({
      MQTT_URL: broker.url,
      MQTT_USERNAME: broker.adminUsername,
      MQTT_PASSWORD: broker.adminPassword,
      MQTT_CLEAN_SESSION: 'true',
      MQTT_BROKER_KIND: 'emqx',
      EMQX_AUTH_SECRET: SECRET,
      EMQX_API_URL: `http://127.0.0.1:${port}`,
      EMQX_API_KEY: 'key-1',
      EMQX_API_SECRET: 'secret-1',
    });
    const rootToken = await login(api);
    tenant = await createTenant(api, rootToken);
    token = tenant.admin.token;
  });

  afterAll(async () => {
    await api?.stop();
    await broker?.stop();
    await new Promise((resolve) => emqxApi?.close(resolve));
  });

  beforeEach(() => {
    kicks.length = 0;
    kickStatus = 204;
  });

  it("should allow a device's credentials with its full client id and answer its whole ACL, ending with deny-all", async () => {
    const device = await createDevice(api, token);
    const creds = await issueCredentials(api, token, '_', device.id);
    const a = creds.account;
    const c = creds.clientId;
    const res = await emqxAuth({
      clientid: `${a}:${c}`,
      username: creds.username,
      password: creds.password,
      peerhost: '10.0.0.7',
    }).expect(200);
    expect(res.body).toEqual({
      result: 'allow',
      is_superuser: false,
      acl: [
        { permission: 'allow', action: 'publish', topic: `$EDC/${a}/${c}/#` },
        { permission: 'allow', action: 'publish', topic: `${a}/${c}/#` },
        { permission: 'allow', action: 'publish', topic: `$EDC/${a}/+/VPNCLIENT-V2/REPLY/#` },
        { permission: 'allow', action: 'subscribe', topic: `$EDC/${a}/${c}/#` },
        { permission: 'deny', action: 'all', topic: '#' },
        { permission: 'deny', action: 'all', topic: '$EDC/#' },
      ],
    });
  });

  it('should deny a wrong password, another client id, a disabled device and malformed requests', async () => {
    const device = await createDevice(api, token);
    const creds = await issueCredentials(api, token, '_', device.id);
    const good = {
      clientid: `${creds.account}:${creds.clientId}`,
      username: creds.username,
      password: creds.password,
    };
    const denied = [
      { ...good, password: `${creds.password}x` },
      { ...good, clientid: creds.clientId },
      { ...good, clientid: `${creds.account}:other` },
      { clientid: good.clientid, username: good.username },
      { ...good, password: 42 },
      [good],
      {},
    ];
    for (const body of denied) {
      const res = await emqxAuth(body);
      expect(res.status).toBe(200);
      expect(res.body).toEqual({ result: 'deny', is_superuser: false });
    }
    // Not a JSON object: the body parser refuses it (400), which EMQX treats as "ignore" and, with
    // no other authenticator in the chain, as a refusal; never an allow.
    for (const body of ['clientid=x', null]) expect((await emqxAuth(body)).status).toBe(400);
    const current = await getDevice(api, token, '_', device.id);
    await request(api.url)
      .put(`/v1/_/devices/${device.id}`)
      .set(bearer(token))
      .send({ status: 'DISABLED', optlock: current.optlock })
      .expect(200);
    expect((await emqxAuth(good)).body).toEqual({ result: 'deny', is_superuser: false });
  });

  it('should answer 401 without the shared secret or with a wrong one', async () => {
    expectError(
      await emqxAuth({ clientid: 'a:b', username: 'a:b', password: 'x' }, null),
      401,
      'UNAUTHORIZED',
    );
    expectError(
      await emqxAuth({ clientid: 'a:b', username: 'a:b', password: 'x' }, `${SECRET}x`),
      401,
      'UNAUTHORIZED',
    );
  });

  it("should kick a deleted or disabled device's live session through EMQX's REST API", async () => {
    const device = await createDevice(api, token);
    const creds = await issueCredentials(api, token, '_', device.id);
    const expected: Kick = {
      method: 'DELETE',
      path: `/api/v5/clients/${encodeURIComponent(`${creds.account}:${creds.clientId}`)}`,
      authorization: `Basic ${Buffer.from('key-1:secret-1').toString('base64')}`,
    };
    // Issuing credentials already cut any session holding the old ones.
    expect(kicks).toEqual([expected]);
    kicks.length = 0;
    const current = await getDevice(api, token, '_', device.id);
    await request(api.url)
      .put(`/v1/_/devices/${device.id}`)
      .set(bearer(token))
      .send({ status: 'DISABLED', optlock: current.optlock })
      .expect(200);
    expect(kicks).toEqual([expected]);
    kicks.length = 0;
    await request(api.url).delete(`/v1/_/devices/${device.id}`).set(bearer(token)).expect(204);
    expect(kicks).toEqual([expected]);
  });

  it('should answer 503 SERVICE_UNAVAILABLE when EMQX keeps failing the kick, after bounded retries', async () => {
    const device = await createDevice(api, token);
    kickStatus = 500;
    const res = await request(api.url).delete(`/v1/_/devices/${device.id}`).set(bearer(token));
    expectError(res, 503, 'SERVICE_UNAVAILABLE');
    expect(kicks).toHaveLength(3);
  });
});
