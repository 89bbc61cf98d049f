import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import request from 'supertest';
import { createDevice } from '../support/device-factories';
import { createTenant, createUser, type Tenant } from '../support/factories';
import { bearer, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';
import { describeWhen } from '../support/prerequisites';

const CHROMIUM = '/usr/bin/chromium';

/** A page server: every path answers a blank HTML page, so the page's origin is this server's. */
async function startPageServer(): Promise<{ server: Server; origin: string }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>dashboard</title><p>dashboard</p>');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

interface FetchResult {
  ok: boolean;
  status?: number;
  body?: unknown;
  retryAfter?: string | null;
  error?: string;
}

/** Runs a cross-origin fetch in the page, as a dashboard's script does. */
function fetchFrom(page: Page, url: string, token: string | null): Promise<FetchResult> {
  return page.evaluate(
    async ({ url, token }) => {
      try {
        const res = await fetch(url, { headers: token ? { Authorization: `Bearer ${token}` } : {} });
        return {
          ok: true,
          status: res.status,
          body: await res.json(),
          retryAfter: res.headers.get('Retry-After'),
        };
      } catch (err) {
        return { ok: false, error: String(err) };
      }
    },
    { url, token },
  );
}

/**
 * CORS in a real browser (Debian's chromium, headless): a page on an allowed origin reads the API
 * with a bearer token, a page on any other origin is refused by the browser. Skipped only when
 * chromium is missing outside CI; in CI (CI=true installs it) a missing browser fails the test.
 */
describeWhen('CORS browser test', { tools: [CHROMIUM] })('CORS for browser dashboards', () => {
  let api: TestApi;
  let browser: Browser;
  let allowed: { server: Server; origin: string };
  let other: { server: Server; origin: string };
  let tenant: Tenant;

  beforeAll(async () => {
    [allowed, other] = await Promise.all([startPageServer(), startPageServer()]);
    api = await startTestApi({
      CORS_ORIGINS: `https://dash.example.com, ${allowed.origin}`,
      // Low, so a test can reach the limit; each test uses principals of its own.
      RATE_LIMIT_PER_MINUTE: '8',
    });
    tenant = await createTenant(api, await login(api));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  afterAll(async () => {
    await browser?.close();
    await api?.stop();
    for (const s of [allowed, other]) await new Promise((r) => s?.server.close(r));
  });

  const openPage = async (origin: string): Promise<{ page: Page; console: string[] }> => {
    const page = await browser.newPage();
    const console: string[] = [];
    page.on('console', (msg) => console.push(msg.text()));
    await page.goto(`${origin}/dashboard.html`);
    return { page, console };
  };

  it('should let the allowed origin list devices with a bearer token and read the JSON', async () => {
    const device = await createDevice(api, tenant.admin.token);
    const { page } = await openPage(allowed.origin);
    const result = await fetchFrom(page, `${api.url}/v1/_/devices`, tenant.admin.token);
    expect(result).toMatchObject({ ok: true, status: 200 });
    expect((result.body as { items: Array<{ id: string }> }).items.map((d) => d.id)).toEqual([device.id]);
    await page.close();
  });

  it('should let the allowed origin read error bodies and the exposed Retry-After', async () => {
    const viewer = await createUser(api, tenant.admin.token, '_', 'viewer');
    const { page } = await openPage(allowed.origin);
    const unauthenticated = await fetchFrom(page, `${api.url}/v1/_/devices`, null);
    expect(unauthenticated).toMatchObject({ ok: true, status: 401, body: { result: 'UNAUTHORIZED' } });
    let last: FetchResult | undefined;
    for (let i = 0; i < 10 && last?.status !== 429; i++) {
      last = await fetchFrom(page, `${api.url}/v1/_/devices`, viewer.token);
    }
    expect(last).toMatchObject({ ok: true, status: 429, body: { result: 'RATE_LIMITED' } });
    expect(Number(last?.retryAfter)).toBeGreaterThan(0);
    await page.close();
  });

  it('should have the browser refuse a page on another origin', async () => {
    const { page, console } = await openPage(other.origin);
    const result = await fetchFrom(page, `${api.url}/v1/_/devices`, tenant.admin.token);
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/Failed to fetch/);
    expect(console.join('\n')).toMatch(/blocked by CORS policy/);
    // Not even a simple (preflight-free) request's answer reaches the page.
    const simple = await fetchFrom(page, `${api.url}/health/live`, null);
    expect(simple.ok).toBe(false);
    await page.close();
  });

  it('should answer an allowed preflight itself, with no token, before any guard', async () => {
    const res = await request(api.url)
      .options(`/v1/_/devices/${'0'.repeat(8)}/vpn/_connect`)
      .set('Origin', allowed.origin)
      .set('Access-Control-Request-Method', 'POST')
      .set('Access-Control-Request-Headers', 'authorization, content-type')
      .expect(204);
    expect(res.headers).toMatchObject({
      'access-control-allow-origin': allowed.origin,
      'access-control-allow-methods': 'GET, POST, PUT, PATCH, DELETE',
      'access-control-allow-headers': 'Authorization, Content-Type, If-None-Match, Last-Event-ID',
      'access-control-max-age': '600',
    });
    expect(res.headers.vary).toMatch(/Origin/);
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    // Preflights are not requests of a principal: as many as a browser sends, never a 429.
    for (let i = 0; i < 12; i++) {
      await request(api.url)
        .options('/v1/_/devices')
        .set('Origin', allowed.origin)
        .set('Access-Control-Request-Method', 'GET')
        .expect(204);
    }
    const actual = await request(api.url)
      .get('/v1/_/devices')
      .set('Origin', allowed.origin)
      .set(bearer(tenant.admin.token))
      .expect(200);
    expect(actual.headers['access-control-allow-origin']).toBe(allowed.origin);
    expect(actual.headers['access-control-expose-headers']).toBe('ETag, Location, Retry-After');
  });

  it('should send no CORS header at all to another origin', async () => {
    const preflight = await request(api.url)
      .options('/v1/_/devices')
      .set('Origin', other.origin)
      .set('Access-Control-Request-Method', 'GET');
    const actual = await request(api.url)
      .get('/v1/_/devices')
      .set('Origin', other.origin)
      .set(bearer(tenant.admin.token))
      .expect(200);
    // A prefix or a look-alike of an allowed origin is another origin.
    const lookalike = await request(api.url)
      .get('/health/live')
      .set('Origin', `${allowed.origin}.evil.example`)
      .expect(200);
    for (const res of [preflight, actual, lookalike]) {
      expect(Object.keys(res.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    }
    expect(preflight.status).not.toBe(204);
  });
});

describe('CORS by default (CORS_ORIGINS unset)', () => {
  let api: TestApi;

  beforeAll(async () => {
    api = await startTestApi();
  });

  afterAll(async () => {
    await api?.stop();
  });

  it('should send no CORS header to any origin', async () => {
    const preflight = await request(api.url)
      .options('/v1/_/devices')
      .set('Origin', 'http://127.0.0.1:1')
      .set('Access-Control-Request-Method', 'GET');
    const actual = await request(api.url).get('/health/live').set('Origin', 'http://127.0.0.1:1').expect(200);
    for (const res of [preflight, actual]) {
      expect(Object.keys(res.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    }
  });
});
