import { Client } from 'pg';
import request from 'supertest';
import { createTestDatabase, type TestDatabase } from '../support/database';
import {
  createDeviceWithCredentials,
  getVpnStatus,
  listOperations,
  waitForConnectionStatus,
  type DeviceWithCredentials,
} from '../support/device-factories';
import { eventually, holds } from '../support/eventually';
import { createTenant } from '../support/factories';
import { bearer, expectError, login } from '../support/http';
import { ProcessGroup, startDeviceAgent } from '../support/processes';
import { startApiProcess, type ApiProcess } from '../support/processes';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy';
import { TEST_ADMIN_PASSWORD } from '../support/test-api';

/**
 * The fault suite (docs/reliability.md): agents killed or frozen mid-command, the database's
 * connections killed or refused, the API killed with operations RUNNING. The API reaches Postgres
 * through a TCP proxy the test can switch to refusing, so the machine's Postgres is never stopped.
 * Each test prints its figures ("fault: …") for the report.
 */
describe('fault suite', () => {
  const procs = new ProcessGroup();
  let proxy: TcpProxy;
  let db: TestDatabase;
  let dbName: string;
  let api: ApiProcess;
  let token: string;

  const command = (device: DeviceWithCredentials, path: string) =>
    request(api.url).post(`/v1/_/devices/${device.id}/vpn/${path}`).set(bearer(token));
  const figure = (text: string) => console.log(`fault: ${text}`);

  beforeAll(async () => {
    db = await createTestDatabase();
    dbName = new URL(db.url).pathname.slice(1);
    const target = new URL(db.url);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const proxied = new URL(db.url);
    proxied.hostname = '127.0.0.1';
    proxied.port = String(proxy.port);
    api = procs.api(
      await startApiProcess(
        { MQTT_URL: '', MQTT_CLEAN_SESSION: 'false' },
        { database: { url: proxied.toString(), drop: () => db.drop() } },
      ),
    );
    token = (await createTenant(api, await login(api))).admin.token;
  }, 120_000);

  afterAll(async () => {
    await procs.stopAll();
    await proxy?.close();
  });

  it('agent SIGKILL mid-command: the command fails with 409 at once, the operation is FAILED, the device MISSING', async () => {
    const device = await createDeviceWithCredentials(api, token, '_');
    const agent = procs.agent(await startDeviceAgent(api, device, ['--fail-mode', 'timeout']));
    await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
    const inFlight = command(device, '_connect?timeout=60000').then((r) => r);
    await eventually(
      async () =>
        holds(
          'the operation to be RUNNING',
          await (() => listOperations(api, token, '_', device.id))(),
          (ops) => ops[0]?.status === 'RUNNING',
        ),
      15_000,
      100,
    );
    const killed = Date.now();
    await agent.stop('SIGKILL');
    const res = await inFlight;
    const waited = Date.now() - killed;
    expectError(res, 409, 'DEVICE_NOT_CONNECTED');
    expect(waited).toBeLessThan(5000);
    expect((await listOperations(api, token, '_', device.id))[0]).toMatchObject({ status: 'FAILED' });
    await waitForConnectionStatus(api, token, '_', device.id, 'MISSING');
    figure(`agent SIGKILL mid-command -> 409 DEVICE_NOT_CONNECTED after ${waited} ms`);
  });

  it('agent SIGSTOP mid-command: 504 DEVICE_TIMEOUT, the operation TIMEOUT; after SIGCONT the device is CONNECTED and commandable', async () => {
    const device = await createDeviceWithCredentials(api, token, '_');
    const agent = procs.agent(
      await startDeviceAgent(api, device, ['--connect-delay-ms', '500', '--keepalive', '20']),
    );
    await waitForConnectionStatus(api, token, '_', device.id, 'CONNECTED');
    const inFlight = command(device, '_connect?timeout=2000').then((r) => r);
    agent.child.kill('SIGSTOP');
    const stopped = Date.now();
    try {
      const res = await inFlight;
      expectError(res, 504, 'DEVICE_TIMEOUT');
      figure(
        `agent SIGSTOP mid-command -> 504 DEVICE_TIMEOUT after ${Date.now() - stopped} ms (timeout 2000)`,
      );
      expect((await listOperations(api, token, '_', device.id))[0]).toMatchObject({ status: 'TIMEOUT' });
    } finally {
      agent.child.kill('SIGCONT');
    }
    // Frozen for less than its keepalive × 1.5: the broker kept it, and it picks up where it was.
    const status = await eventually(
      async () =>
        holds(
          'the resumed agent to report its tunnel',
          await (() => getVpnStatus(api, token, '_', device.id))(),
          (s) => s.connected,
        ),
      15_000,
      100,
    );
    expect(status).toMatchObject({ deviceConnection: 'CONNECTED', ipAddress: device.tunnelAddress });
    expect((await command(device, '_connect')).body).toMatchObject({ connected: true });
  });

  it('Postgres backends terminated: the next requests succeed once the pool reconnects, nothing lost', async () => {
    const before = await request(api.url).get('/v1/_/devices?limit=200').set(bearer(token));
    expect(before.status).toBe(200);
    const admin = new Client({ connectionString: process.env.TEST_PG_ADMIN_URL });
    await admin.connect();
    let terminated: number;
    try {
      const r = await admin.query(
        'SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()) t',
        [dbName],
      );
      terminated = r.rows[0].n as number;
    } finally {
      await admin.end();
    }
    expect(terminated).toBeGreaterThan(0);
    const cut = Date.now();
    const seen: number[] = [];
    await eventually(
      async () =>
        holds(
          'a devices list to succeed again',
          await (async () => {
            const res = await request(api.url).get('/v1/_/devices?limit=200').set(bearer(token));
            seen.push(res.status);
            if (res.status !== 200) expectError(res, 503, 'SERVICE_UNAVAILABLE');
            return res;
          })(),
          (res) => res.status === 200,
        ),
      15_000,
      100,
    );
    const recovered = Date.now() - cut;
    const after = await request(api.url).get('/v1/_/devices?limit=200').set(bearer(token));
    expect(after.body.size).toBe(before.body.size);
    const created = await createDeviceWithCredentials(api, token, '_');
    expect(created.id).toBeDefined();
    figure(
      `pg_terminate_backend of ${terminated} backends -> statuses seen ${JSON.stringify(seen)}, recovered in ${recovered} ms`,
    );
  });

  it('Postgres refusing connections: 503 SERVICE_UNAVAILABLE on DB-backed routes, /health/ready 503, recovery without a restart', async () => {
    const device = await createDeviceWithCredentials(api, token, '_');
    proxy.refuse();
    const refusedAt = Date.now();
    try {
      const checks: Array<[string, PromiseLike<request.Response>]> = [
        ['list devices', request(api.url).get('/v1/_/devices').set(bearer(token))],
        ['get device', request(api.url).get(`/v1/_/devices/${device.id}`).set(bearer(token))],
        [
          'create device',
          request(api.url).post('/v1/_/devices').set(bearer(token)).send({ clientId: 'refused-1' }),
        ],
        ['VPN status', request(api.url).get(`/v1/_/devices/${device.id}/vpn`).set(bearer(token))],
        ['operations', request(api.url).get(`/v1/_/devices/${device.id}/operations`).set(bearer(token))],
        ['users', request(api.url).get('/v1/_/users').set(bearer(token))],
        ['VPN command', command(device, '_connect')],
        ['fleet status', request(api.url).get('/v1/_/vpn/status').set(bearer(token))],
        ['token info', request(api.url).get('/v1/authentication/info').set(bearer(token))],
        [
          'login',
          request(api.url)
            .post('/v1/authentication/user')
            .send({ username: 'admin', password: TEST_ADMIN_PASSWORD }),
        ],
      ];
      const answers = await Promise.all(checks.map(async ([what, res]) => [what, await res] as const));
      for (const [what, res] of answers) {
        // The route's name in the comparison, so a failure says which one answered what.
        expect({ what, status: res.status }).toEqual({ what, status: 503 });
        expectError(res, 503, 'SERVICE_UNAVAILABLE');
        expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
      }
      const ready = await request(api.url).get('/health/ready');
      expect(ready.status).toBe(503);
      figure(
        `Postgres refusing -> 503 SERVICE_UNAVAILABLE within ${Date.now() - refusedAt} ms; /health/ready 503`,
      );
    } finally {
      proxy.accept();
    }
    const accepted = Date.now();
    await eventually(
      async () =>
        holds(
          'the API to answer again',
          await (async () => (await request(api.url).get('/v1/_/devices').set(bearer(token))).status)(),
          (s) => s === 200,
        ),
      15_000,
      100,
    );
    await eventually(
      async () =>
        holds(
          '/health/ready to be 200',
          await (async () => (await request(api.url).get('/health/ready')).status)(),
          (s) => s === 200,
        ),
      15_000,
      100,
    );
    figure(`Postgres accepting again -> 200 after ${Date.now() - accepted} ms, no restart`);
    const res = await request(api.url)
      .post('/v1/_/devices')
      .set(bearer(token))
      .send({ clientId: 'after-refusal' });
    expect(res.status).toBe(201);
  });

  it('API SIGKILL with operations RUNNING: the restarted instance closes them at start', async () => {
    const devices = await Promise.all([0, 1, 2].map(() => createDeviceWithCredentials(api, token, '_')));
    for (const d of devices) {
      procs.agent(await startDeviceAgent(api, d, ['--fail-mode', 'timeout']));
      await waitForConnectionStatus(api, token, '_', d.id, 'CONNECTED');
    }
    const inFlight = devices.map((d) =>
      command(d, '_connect?timeout=60000').then(
        () => 'answered',
        () => 'lost',
      ),
    );
    for (const d of devices) {
      await eventually(
        async () =>
          holds(
            'the operation to be RUNNING',
            await (() => listOperations(api, token, '_', d.id))(),
            (ops) => ops[0]?.status === 'RUNNING',
          ),
        15_000,
        100,
      );
    }
    api = await procs.restartApi(api, 'SIGKILL');
    const restarted = Date.now();
    expect(await Promise.all(inFlight)).toEqual(['lost', 'lost', 'lost']);
    for (const d of devices) {
      const ops = await listOperations(api, token, '_', d.id);
      expect(ops.map((o) => o.status)).toEqual(['FAILED']);
      expect(ops[0].endedOn).not.toBeNull();
    }
    figure(
      `API SIGKILL with 3 RUNNING -> all FAILED when the restarted API listens (+${Date.now() - restarted} ms)`,
    );
  });
});
