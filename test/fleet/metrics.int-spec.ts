import { randomBytes, randomUUID } from 'node:crypto';
import { Client } from 'pg';
import request from 'supertest';
import { Topics } from '@app/protocol';
import { eventually } from '../support/eventually';
import {
  connectAsDevice,
  createDevice,
  getDevice,
  publishBirth,
  publishDc,
  publishRaw,
  publishStatus,
} from '../support/device-factories';
import { createTenant, type Tenant } from '../support/factories';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';
import { Closer, SimDevice, startGateway } from '../gateways/gateway-fixtures';

/** One sample of a scrape: `name{a="x",b="y"} value`. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the Prometheus text format (the subset prom-client writes: no timestamps). */
function parseScrape(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]] = l[2];
    samples.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return samples;
}

/** The value of the one sample with this name and (at least) these labels; 0 when there is none. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value ?? 0;
}

const METRICS_TOKEN = `mt-${randomBytes(24).toString('base64url')}`;

describe('GET /metrics', () => {
  let api: TestApi;
  let rootToken: string;
  let tenant: Tenant;
  const closer = new Closer();

  beforeAll(async () => {
    api = await startTestApi({ METRICS_TOKEN });
    rootToken = await login(api);
    tenant = await createTenant(api, rootToken);
  });

  afterAll(async () => {
    await closer.closeAll();
    await api?.stop();
  });

  const scrape = async (): Promise<Sample[]> => {
    const res = await request(api.url).get('/metrics').set(bearer(METRICS_TOKEN)).expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain;.*version=0\.0\.4/);
    return parseScrape(res.text);
  };

  it('should refuse a scrape without the token or with a wrong one (401), and answer with it', async () => {
    const none = await request(api.url).get('/metrics');
    expectError(none, 401, 'UNAUTHORIZED');
    expect(none.headers['www-authenticate']).toBe('Bearer realm="metrics"');
    expectError(
      await request(api.url)
        .get('/metrics')
        .set(bearer(`${METRICS_TOKEN}x`)),
      401,
      'UNAUTHORIZED',
    );
    expectError(
      await request(api.url)
        .get('/metrics')
        .set(bearer(METRICS_TOKEN.slice(0, -1))),
      401,
      'UNAUTHORIZED',
    );
    // A user's own bearer token is not the metrics token.
    expectError(await request(api.url).get('/metrics').set(bearer(rootToken)), 401, 'UNAUTHORIZED');
    const ok = await request(api.url).get('/metrics').set(bearer(METRICS_TOKEN)).expect(200);
    expect(ok.text).toContain('# TYPE http_request_duration_seconds histogram');
    expect(ok.text).toContain('# TYPE process_cpu_user_seconds_total counter');
  });

  it('should count a real VPN connect by verb and outcome, with its duration', async () => {
    const { fake } = await startGateway(api, tenant.admin.token);
    closer.add(fake);
    const device = await createDevice(api, tenant.admin.token);
    closer.add(await SimDevice.start(api, tenant.admin.token, '_', device, tenant.account.name));

    const before = await scrape();
    const res = await request(api.url)
      .post(`/v1/_/devices/${device.id}/vpn/_connect`)
      .query({ timeout: 10_000 })
      .set(bearer(tenant.admin.token))
      .expect(200);
    expect(res.body).toMatchObject({ connected: true });
    const after = await scrape();

    const completed = { verb: 'connect', outcome: 'completed' };
    expect(valueOf(after, 'vpn_commands_total', completed)).toBe(
      valueOf(before, 'vpn_commands_total', completed) + 1,
    );
    const count = (s: Sample[]) => valueOf(s, 'vpn_command_duration_seconds_count', { verb: 'connect' });
    expect(count(after)).toBe(count(before) + 1);
    const sum = (s: Sample[]) => valueOf(s, 'vpn_command_duration_seconds_sum', { verb: 'connect' });
    expect(sum(after)).toBeGreaterThan(sum(before));
    // The connect put the device's peer on the gateway, which applied it before the device was told.
    expect(valueOf(after, 'vpn_gateway_peers', { kind: 'device', applied: 'true' })).toBe(1);
    expect(valueOf(after, 'vpn_gateways', { connection: 'CONNECTED' })).toBe(1);
    expect(valueOf(after, 'vpn_device_tunnels', { status: 'connected' })).toBe(1);
    expect(valueOf(after, 'vpn_sessions_active')).toBe(0);
  });

  it('should count a command that times out under its own outcome', async () => {
    const device = await createDevice(api, tenant.admin.token);
    const sim = closer.add(
      await SimDevice.start(api, tenant.admin.token, '_', device, tenant.account.name, { publicKey: null }),
    );
    sim.respond = () => null;
    const before = await scrape();
    const res = await request(api.url)
      .post(`/v1/_/devices/${device.id}/vpn/_disconnect`)
      .query({ timeout: 1000 })
      .set(bearer(tenant.admin.token));
    expectError(res, 504, 'DEVICE_TIMEOUT');
    const after = await scrape();
    const timeout = { verb: 'disconnect', outcome: 'timeout' };
    expect(valueOf(after, 'vpn_commands_total', timeout)).toBe(
      valueOf(before, 'vpn_commands_total', timeout) + 1,
    );
    const count = (s: Sample[]) => valueOf(s, 'vpn_command_duration_seconds_count', { verb: 'disconnect' });
    expect(count(after)).toBe(count(before) + 1);
  });

  it('should report devices by connection state as the database holds them', async () => {
    const t = await createTenant(api, rootToken);
    await createDevice(api, t.admin.token);
    const leaving = await createDevice(api, t.admin.token);
    const client = await connectAsDevice(api, t.admin.token, '_', leaving, t.account.name);
    closer.client(client);
    await publishBirth(client, t.account.name, leaving.clientId);
    await publishDc(client, t.account.name, leaving.clientId);
    await eventually(async () =>
      expect((await getDevice(api, t.admin.token, '_', leaving.id)).connectionStatus).toBe('DISCONNECTED'),
    );

    const db = new Client({ connectionString: api.db.url });
    await db.connect();
    let counts: Record<string, number>;
    try {
      const rows: Array<{ s: string; n: number }> = (
        await db.query('SELECT connection_status AS s, count(*)::int AS n FROM device GROUP BY 1')
      ).rows;
      counts = Object.fromEntries(rows.map((r) => [r.s, r.n]));
    } finally {
      await db.end();
    }
    const samples = await scrape();
    for (const state of ['CONNECTED', 'DISCONNECTED', 'MISSING', 'NEVER_CONNECTED']) {
      expect(valueOf(samples, 'vpn_devices', { connection: state })).toBe(counts[state] ?? 0);
    }
    expect(counts.DISCONNECTED).toBeGreaterThanOrEqual(1);
    expect(counts.NEVER_CONNECTED).toBeGreaterThanOrEqual(1);
    // No webhooks here: every delivery status is reported, as 0.
    for (const status of ['PENDING', 'SENDING', 'DELIVERED', 'FAILED', 'CANCELLED']) {
      expect(samples.find((x) => x.name === 'webhook_deliveries' && x.labels.status === status)?.value).toBe(
        0,
      );
    }
    expect(valueOf(samples, 'mqtt_link_up')).toBe(1);
    expect(valueOf(samples, 'database_up')).toBe(1);
  });

  it('should count status reports ingested and the malformed ones dropped', async () => {
    const device = await createDevice(api, tenant.admin.token);
    const client = closer.client(
      await connectAsDevice(api, tenant.admin.token, '_', device, tenant.account.name),
    );
    await publishBirth(client, tenant.account.name, device.clientId);
    await eventually(async () =>
      expect((await getDevice(api, tenant.admin.token, '_', device.id)).connectionStatus).toBe('CONNECTED'),
    );
    const before = await scrape();
    await publishStatus(client, tenant.account.name, device.clientId, {
      connected: false,
      ipAddress: '0.0.0.0',
      status: 'idle',
      statusCode: '003',
      bootId: 'boot-metrics',
      seq: 1,
    });
    await publishRaw(
      client,
      Topics.status(tenant.account.name, device.clientId),
      Buffer.from([0xff, 0xff, 0xff]),
    );
    await eventually(async () => {
      const after = await scrape();
      expect(valueOf(after, 'vpn_status_reports_ingested_total')).toBe(
        valueOf(before, 'vpn_status_reports_ingested_total') + 1,
      );
      const malformed = { reason: 'malformed' };
      expect(valueOf(after, 'vpn_status_reports_dropped_total', malformed)).toBe(
        valueOf(before, 'vpn_status_reports_dropped_total', malformed) + 1,
      );
    });
  });

  it('should label requests by route template, never by raw path or id', async () => {
    const device = await createDevice(api, tenant.admin.token);
    await request(api.url).get(`/v1/_/devices/${device.id}/vpn`).set(bearer(tenant.admin.token)).expect(200);
    await request(api.url)
      .get(`/v1/${tenant.account.id}/devices/${device.id}`)
      .set(bearer(tenant.admin.token))
      .expect(200);
    // Authenticated routes refuse a missing token inside the matched route: still its template.
    await request(api.url).get(`/v1/_/devices/${randomUUID()}/vpn`).expect(401);
    await request(api.url).get(`/no-such-route/${randomUUID()}`).expect(404);

    const res = await request(api.url).get('/metrics').set(bearer(METRICS_TOKEN)).expect(200);
    const samples = parseScrape(res.text);
    const http = (labels: Record<string, string>) =>
      valueOf(samples, 'http_request_duration_seconds_count', labels);
    expect(http({ method: 'GET', route: '/v1/:scopeId/devices/:deviceId/vpn', status_code: '200' })).toBe(1);
    expect(http({ method: 'GET', route: '/v1/:scopeId/devices/:deviceId/vpn', status_code: '401' })).toBe(1);
    expect(
      http({ method: 'GET', route: '/v1/:scopeId/devices/:deviceId', status_code: '200' }),
    ).toBeGreaterThanOrEqual(1);
    expect(http({ method: 'GET', route: '<unmatched>', status_code: '404' })).toBeGreaterThanOrEqual(1);
    const connect = {
      method: 'POST',
      route: '/v1/:scopeId/devices/:deviceId/vpn/_connect',
      status_code: '200',
    };
    expect(http(connect)).toBeGreaterThanOrEqual(1);
    const routes = new Set(
      samples.filter((s) => s.name === 'http_request_duration_seconds_count').map((s) => s.labels.route),
    );
    for (const route of routes) expect(route).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-/);
    // No id of any kind in any label value of the whole scrape.
    for (const id of [device.id, tenant.account.id, tenant.admin.id, device.clientId, tenant.account.name]) {
      expect(res.text).not.toContain(id);
    }
  });
});

describe('GET /metrics without METRICS_TOKEN', () => {
  let api: TestApi;
  let other: TestApi;

  beforeAll(async () => {
    // Two APIs in one process: each has its own registry, no "already registered" clash.
    [api, other] = await Promise.all([startTestApi(), startTestApi()]);
  });

  afterAll(async () => {
    await Promise.all([api?.stop(), other?.stop()]);
  });

  it('should answer anyone, each API with its own counts', async () => {
    await request(api.url).get('/health/live').expect(200);
    await request(api.url).get('/health/live').expect(200);
    const mine = parseScrape((await request(api.url).get('/metrics').expect(200)).text);
    const theirs = parseScrape((await request(other.url).get('/metrics').expect(200)).text);
    const live = { method: 'GET', route: '/health/live', status_code: '200' };
    expect(valueOf(mine, 'http_request_duration_seconds_count', live)).toBe(2);
    expect(valueOf(theirs, 'http_request_duration_seconds_count', live)).toBe(0);
  });
});
