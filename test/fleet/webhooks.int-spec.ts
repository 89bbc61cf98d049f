import type { components } from '../generated/api-types';
import type { MqttClient } from 'mqtt';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import request from 'supertest';
import { eventually } from '../support/eventually';
import {
  connectAsDevice,
  createDevice,
  endAll,
  publishBirth,
  publishDc,
  publishStatus,
} from '../support/device-factories';
import { createAccount, createTenant, createUser, type Tenant } from '../support/factories';
import { createTestDatabase, type TestDatabase } from '../support/database';
import { bearer, expectError, login } from '../support/http';
import { startTestApi, type TestApi } from '../support/test-api';
import { answer, WebhookReceiver } from './webhook-receiver';

const ALL_EVENTS = ['vpn.connected', 'vpn.disconnected', 'vpn.error', 'device.connection'];
const SECRET = /^whsec_[A-Za-z0-9+/]{43}=$/;

/** The tests' receiver listens on 127.0.0.1, so the API must allow private addresses. */
const ENV = {
  WEBHOOK_ALLOW_PRIVATE: 'true',
  WEBHOOK_POLL_INTERVAL_MS: '50',
  WEBHOOK_RETRY_DELAYS_MS: '20,40,60,80,100',
  WEBHOOK_TIMEOUT_MS: '700',
};

/** A webhook as listed; `secret` only in the answer that creates it. */
type WebhookBody = components['schemas']['WebhookDto'] & { secret?: string };

/** The generated delivery with its payload typed: the spec leaves the payload an open object. */
type DeliveryBody = Omit<components['schemas']['WebhookDeliveryDto'], 'payload'> & {
  payload: { type: string; timestamp: string; data: Record<string, unknown> };
};

let pathSeq = 0;
const newPath = (): string => `/hook-${++pathSeq}-${randomBytes(3).toString('hex')}`;

async function createWebhook(
  api: TestApi,
  token: string,
  body: Record<string, unknown>,
  scope = '_',
): Promise<WebhookBody & { secret: string }> {
  const res = await request(api.url).post(`/v1/${scope}/webhooks`).set(bearer(token)).send(body);
  if (res.status !== 201) throw new Error(`createWebhook: ${res.status} ${res.text}`);
  return res.body as WebhookBody & { secret: string };
}

async function deliveries(api: TestApi, token: string, id: string, scope = '_'): Promise<DeliveryBody[]> {
  const res = await request(api.url)
    .get(`/v1/${scope}/webhooks/${id}/deliveries`)
    .set(bearer(token))
    .expect(200);
  return res.body.items as DeliveryBody[];
}

async function sendTest(api: TestApi, token: string, id: string): Promise<DeliveryBody> {
  const res = await request(api.url).post(`/v1/_/webhooks/${id}/_test`).set(bearer(token)).expect(202);
  return res.body as DeliveryBody;
}

describe('signed webhooks (/v1/{scopeId}/webhooks)', () => {
  let api: TestApi;
  let root: string;
  let tenant: Tenant;
  const receiver = new WebhookReceiver();
  const clients: MqttClient[] = [];

  /** A webhook on a fresh receiver path answered by `behaviour`, with the receiver knowing its secret. */
  async function hook(
    behaviour: Parameters<WebhookReceiver['on']>[1],
    events = ['device.connection'],
    token = tenant.admin.token,
    scope = '_',
  ): Promise<{ webhook: WebhookBody & { secret: string }; path: string }> {
    const path = newPath();
    receiver.on(path, behaviour);
    const webhook = await createWebhook(api, token, { url: receiver.url(path), events }, scope);
    receiver.setSecret(path, webhook.secret);
    return { webhook, path };
  }

  beforeAll(async () => {
    await receiver.start();
    api = await startTestApi(ENV);
    root = await login(api);
    tenant = await createTenant(api, root);
  });

  afterAll(async () => {
    await endAll(...clients);
    await api?.stop();
    await receiver.stop();
  });

  describe('CRUD', () => {
    it('should create a webhook, show its secret once, update it with optlock and delete it', async () => {
      const token = tenant.admin.token;
      const url = receiver.url('/crud');
      const created = await request(api.url)
        .post('/v1/_/webhooks')
        .set(bearer(token))
        .send({ url, events: ['vpn.connected', 'vpn.error'], description: 'dashboard' })
        .expect(201);
      expect(created.body).toMatchObject({
        scopeId: tenant.account.id,
        url,
        events: ['vpn.connected', 'vpn.error'],
        description: 'dashboard',
        enabled: true,
        disabledReason: null,
        disabledOn: null,
        createdBy: tenant.admin.id,
      });
      expect(created.body.secret).toMatch(SECRET);
      expect(Buffer.from((created.body.secret as string).slice(6), 'base64').length).toBeGreaterThanOrEqual(
        24,
      );
      const id = created.body.id as string;
      const { secret: _secret, ...withoutSecret } = created.body as WebhookBody;

      const read = await request(api.url).get(`/v1/_/webhooks/${id}`).set(bearer(token)).expect(200);
      expect(read.body).toEqual(withoutSecret);
      expect(read.body).not.toHaveProperty('secret');
      const listed = await request(api.url).get('/v1/_/webhooks').set(bearer(token)).expect(200);
      expect(listed.body.items).toContainEqual(withoutSecret);
      expect(JSON.stringify(listed.body)).not.toContain(created.body.secret);

      const updated = await request(api.url)
        .put(`/v1/_/webhooks/${id}`)
        .set(bearer(token))
        .send({ events: ['device.connection'], enabled: false, optlock: created.body.optlock })
        .expect(200);
      expect(updated.body).toMatchObject({
        id,
        url,
        events: ['device.connection'],
        enabled: false,
        disabledReason: null,
        optlock: created.body.optlock + 1,
      });
      expect(updated.body.disabledOn).not.toBeNull();
      expect(updated.body).not.toHaveProperty('secret');
      expectError(
        await request(api.url)
          .put(`/v1/_/webhooks/${id}`)
          .set(bearer(token))
          .send({ description: 'stale', optlock: created.body.optlock }),
        409,
        'OPTLOCK_CONFLICT',
      );
      expectError(
        await request(api.url).post(`/v1/_/webhooks/${id}/_test`).set(bearer(token)),
        409,
        'CONFLICT',
      );

      await request(api.url).delete(`/v1/_/webhooks/${id}`).set(bearer(token)).expect(204);
      expectError(await request(api.url).get(`/v1/_/webhooks/${id}`).set(bearer(token)), 404, 'NOT_FOUND');
      expectError(await request(api.url).delete(`/v1/_/webhooks/${id}`).set(bearer(token)), 404, 'NOT_FOUND');
    });

    it('should answer 400 with the error body and change nothing for invalid input', async () => {
      const t = await createTenant(api, root);
      const url = receiver.url('/valid');
      const bad: Array<[Record<string, unknown>, string]> = [
        [{ url: 'ftp://example.com/x', events: ['vpn.connected'] }, 'http or https'],
        [{ url: 'not a url', events: ['vpn.connected'] }, 'absolute http or https URL'],
        [{ url: 'https://user:pw@example.com/x', events: ['vpn.connected'] }, 'credentials'],
        [{ url: `https://example.com/${'a'.repeat(2048)}`, events: ['vpn.connected'] }, 'url'],
        [{ url, events: [] }, 'events'],
        [{ url, events: ['vpn.exploded'] }, 'vpn.connected, vpn.disconnected, vpn.error, device.connection'],
        [{ url, events: ['vpn.error', 'vpn.error'] }, 'events'],
        [{ url, events: 'vpn.error' }, 'events'],
        [{ events: ['vpn.error'] }, 'url'],
        [{ url, events: ['vpn.error'], secret: 'whsec_mine' }, 'secret'],
        [{ url, events: ['vpn.error'], enabled: 'yes' }, 'enabled'],
      ];
      for (const [body, mention] of bad) {
        const res = await request(api.url).post('/v1/_/webhooks').set(bearer(t.admin.token)).send(body);
        expectError(res, 400, 'INVALID_ARGUMENT');
        expect({ body, details: res.body.details as string }).toEqual({
          body,
          details: expect.stringContaining(mention) as string,
        });
      }
      const list = await request(api.url).get('/v1/_/webhooks').set(bearer(t.admin.token)).expect(200);
      expect(list.body.items).toEqual([]);

      const w = await createWebhook(api, t.admin.token, { url, events: ['vpn.error'] });
      const { secret: _s, ...stored } = w;
      for (const body of [
        { events: ['nope'], optlock: w.optlock },
        { url: 'gopher://x', optlock: w.optlock },
        { description: 'no optlock' },
        { url: 'https://a:b@example.com', optlock: w.optlock },
      ]) {
        expectError(
          await request(api.url).put(`/v1/_/webhooks/${w.id}`).set(bearer(t.admin.token)).send(body),
          400,
          'INVALID_ARGUMENT',
        );
      }
      expectError(
        await request(api.url).get('/v1/_/webhooks/not-a-uuid').set(bearer(t.admin.token)),
        400,
        'INVALID_ARGUMENT',
      );
      const after = await request(api.url)
        .get(`/v1/_/webhooks/${w.id}`)
        .set(bearer(t.admin.token))
        .expect(200);
      expect(after.body).toEqual(stored);
    });

    it('should let viewers read webhooks but not change them', async () => {
      const viewer = await createUser(api, tenant.admin.token, '_', 'viewer');
      const w = await createWebhook(api, tenant.admin.token, {
        url: receiver.url('/viewer'),
        events: ['vpn.error'],
      });
      await request(api.url).get(`/v1/_/webhooks/${w.id}`).set(bearer(viewer.token)).expect(200);
      await request(api.url).get(`/v1/_/webhooks/${w.id}/deliveries`).set(bearer(viewer.token)).expect(200);
      const refused = [
        request(api.url)
          .post('/v1/_/webhooks')
          .send({ url: receiver.url('/v'), events: ['vpn.error'] }),
        request(api.url).put(`/v1/_/webhooks/${w.id}`).send({ description: 'x', optlock: w.optlock }),
        request(api.url).delete(`/v1/_/webhooks/${w.id}`),
        request(api.url).post(`/v1/_/webhooks/${w.id}/_test`),
      ];
      for (const req of refused) {
        const res = await req.set(bearer(viewer.token));
        expectError(res, 403, 'FORBIDDEN');
        expect(res.body.details).toContain('webhook:write');
      }
    });
  });

  describe('tenancy', () => {
    it("should never let another tenant see or change a tenant's webhook", async () => {
      const owner = await createTenant(api, root);
      const other = await createTenant(api, root);
      const w = await createWebhook(api, owner.admin.token, {
        url: receiver.url('/tenancy'),
        events: ['vpn.error'],
      });
      const t = other.admin.token;
      const paths = [`/v1/_/webhooks/${w.id}`, `/v1/${owner.account.id}/webhooks/${w.id}`];
      const calls = (p: string) => [
        request(api.url).get(p),
        request(api.url).put(p).send({ description: 'hijacked', optlock: w.optlock }),
        request(api.url).get(`${p}/deliveries`),
        request(api.url).post(`${p}/_test`),
        request(api.url).delete(p),
      ];
      for (const req of calls(paths[0])) expectError(await req.set(bearer(t)), 404, 'NOT_FOUND');
      for (const req of calls(paths[1])) expectError(await req.set(bearer(t)), 403, 'FORBIDDEN');
      expectError(
        await request(api.url).get(`/v1/${owner.account.id}/webhooks`).set(bearer(t)),
        403,
        'FORBIDDEN',
      );
      expectError(
        await request(api.url)
          .post(`/v1/${owner.account.id}/webhooks`)
          .set(bearer(t))
          .send({ url: receiver.url('/x'), events: ['vpn.error'] }),
        403,
        'FORBIDDEN',
      );
      const theirs = await request(api.url).get('/v1/_/webhooks').set(bearer(t)).expect(200);
      expect(theirs.body.items).toEqual([]);
      const { secret: _s, ...stored } = w;
      const still = await request(api.url)
        .get(`/v1/_/webhooks/${w.id}`)
        .set(bearer(owner.admin.token))
        .expect(200);
      expect(still.body).toEqual(stored);
      expect(await deliveries(api, owner.admin.token, w.id)).toEqual([]);
      // A parent account's admin reaches it through the child's scope id.
      await request(api.url).get(`/v1/${owner.account.id}/webhooks/${w.id}`).set(bearer(root)).expect(200);
    });
  });

  describe('delivery', () => {
    it('should deliver a signed webhook.test that standardwebhooks verifies', async () => {
      const { webhook, path } = await hook(answer(204));
      const queued = await sendTest(api, tenant.admin.token, webhook.id);
      expect(queued).toMatchObject({
        webhookId: webhook.id,
        eventType: 'webhook.test',
        status: 'PENDING',
        attempts: 0,
      });
      expect(queued.messageId).toMatch(/^msg_[0-9a-f]{32}$/);
      const [d] = await eventually(async () => {
        const list = await deliveries(api, tenant.admin.token, webhook.id);
        expect(list.map((x) => x.status)).toEqual(['DELIVERED']);
        return list;
      });
      expect(d).toMatchObject({ id: queued.id, attempts: 1, lastResponseCode: 204, lastError: null });
      const [req] = receiver.to(path);
      expect(receiver.to(path)).toHaveLength(1);
      expect(req.verified).toBe(true);
      expect(req.headers['webhook-id']).toBe(queued.messageId);
      expect(req.headers['content-type']).toBe('application/json');
      expect(req.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
      expect(Math.abs(Number(req.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
      const body = JSON.parse(req.body) as DeliveryBody['payload'];
      expect(body).toEqual({
        type: 'webhook.test',
        timestamp: expect.any(String) as string,
        data: { webhookId: webhook.id, scopeId: tenant.account.id },
      });
      expect(d.payload).toEqual(body);
    });

    it('should retry failures with the same webhook-id and deliver once', async () => {
      const { webhook, path } = await hook((n, _req, res) => res.writeHead(n < 3 ? 500 : 200).end());
      const queued = await sendTest(api, tenant.admin.token, webhook.id);
      const [d] = await eventually(async () => {
        const list = await deliveries(api, tenant.admin.token, webhook.id);
        expect(list[0].status).toBe('DELIVERED');
        return list;
      });
      expect(d).toMatchObject({ attempts: 4, lastResponseCode: 200, lastError: null });
      const got = receiver.to(path);
      expect(got.map((r) => r.headers['webhook-id'])).toEqual(Array(4).fill(queued.messageId));
      expect(got.every((r) => r.verified)).toBe(true);
      expect(new Set(got.map((r) => r.body)).size).toBe(1);
    });

    it('should mark a delivery FAILED when every attempt fails', async () => {
      const { webhook, path } = await hook(answer(500));
      await sendTest(api, tenant.admin.token, webhook.id);
      const [d] = await eventually(async () => {
        const list = await deliveries(api, tenant.admin.token, webhook.id);
        expect(list[0].status).toBe('FAILED');
        return list;
      });
      // WEBHOOK_RETRY_DELAYS_MS has 5 delays: 6 attempts.
      expect(d).toMatchObject({ attempts: 6, lastResponseCode: 500, lastError: 'HTTP 500' });
      expect(receiver.to(path)).toHaveLength(6);
      const endpoint = await request(api.url)
        .get(`/v1/_/webhooks/${webhook.id}`)
        .set(bearer(tenant.admin.token));
      expect(endpoint.body.enabled).toBe(true);
    });

    it('should disable the endpoint when the receiver answers 410', async () => {
      const { webhook, path } = await hook(answer(410));
      await sendTest(api, tenant.admin.token, webhook.id);
      await eventually(async () => {
        const res = await request(api.url)
          .get(`/v1/_/webhooks/${webhook.id}`)
          .set(bearer(tenant.admin.token));
        expect(res.body).toMatchObject({
          enabled: false,
          disabledReason: 'ENDPOINT_GONE',
          optlock: webhook.optlock + 1,
        });
        expect(res.body.disabledOn).not.toBeNull();
      });
      const [d] = await deliveries(api, tenant.admin.token, webhook.id);
      expect(d).toMatchObject({ status: 'FAILED', attempts: 1, lastResponseCode: 410 });
      expect(receiver.to(path)).toHaveLength(1);
      expectError(
        await request(api.url).post(`/v1/_/webhooks/${webhook.id}/_test`).set(bearer(tenant.admin.token)),
        409,
        'CONFLICT',
      );
      // Re-enabled by hand: the reason goes away and deliveries flow again.
      receiver.on(path, answer(200));
      const res = await request(api.url)
        .put(`/v1/_/webhooks/${webhook.id}`)
        .set(bearer(tenant.admin.token))
        .send({ enabled: true, optlock: webhook.optlock + 1 })
        .expect(200);
      expect(res.body).toMatchObject({ enabled: true, disabledReason: null, disabledOn: null });
      await sendTest(api, tenant.admin.token, webhook.id);
      await eventually(async () => {
        const list = await deliveries(api, tenant.admin.token, webhook.id);
        expect(list.map((x) => x.status)).toEqual(['DELIVERED', 'FAILED']);
      });
    });

    it('should cut a hanging receiver at the timeout and retry with the same webhook-id', async () => {
      const { webhook, path } = await hook((n, _req, res) => {
        if (n > 0) res.writeHead(200).end();
        // The first request never gets an answer.
      });
      const queued = await sendTest(api, tenant.admin.token, webhook.id);
      const [d] = await eventually(async () => {
        const list = await deliveries(api, tenant.admin.token, webhook.id);
        expect(list[0].status).toBe('DELIVERED');
        return list;
      }, 10_000);
      expect(d.attempts).toBe(2);
      expect(receiver.to(path).map((r) => r.headers['webhook-id'])).toEqual([
        queued.messageId,
        queued.messageId,
      ]);
    });

    it('should record a timeout as the error of a hanging attempt', async () => {
      const { webhook } = await hook(() => undefined);
      await sendTest(api, tenant.admin.token, webhook.id);
      const [d] = await eventually(async () => {
        const list = await deliveries(api, tenant.admin.token, webhook.id);
        expect(list[0].lastError).toBe('timed out after 700 ms');
        return list;
      }, 10_000);
      expect(d.lastResponseCode).toBeNull();
      expect(['PENDING', 'SENDING']).toContain(d.status);
      await request(api.url)
        .delete(`/v1/_/webhooks/${webhook.id}`)
        .set(bearer(tenant.admin.token))
        .expect(204);
    });

    it('should not follow redirects', async () => {
      const target = newPath();
      receiver.on(target, answer(200));
      const { webhook, path } = await hook(answer(302, { location: receiver.url(target) }));
      await sendTest(api, tenant.admin.token, webhook.id);
      const [d] = await eventually(async () => {
        const list = await deliveries(api, tenant.admin.token, webhook.id);
        expect(list[0].status).toBe('FAILED');
        return list;
      });
      expect(d).toMatchObject({ lastResponseCode: 302, attempts: 6 });
      expect(d.lastError).toContain('redirect not followed');
      expect(receiver.to(path)).toHaveLength(6);
      expect(receiver.to(target)).toHaveLength(0);
    });

    it("should deliver a simulated device's connection and VPN events to webhooks up its account tree", async () => {
      const child = await createAccount(api, tenant.admin.token);
      const sibling = await createTenant(api, root);
      const parentHook = await hook(answer(200), ALL_EVENTS);
      const vpnOnly = await hook(answer(200), ['vpn.connected']);
      const siblingHook = await hook(answer(200), ALL_EVENTS, sibling.admin.token);
      const device = await createDevice(api, tenant.admin.token, child.id);
      const client = await connectAsDevice(api, tenant.admin.token, child.id, device, child.name);
      clients.push(client);
      await publishBirth(client, child.name, device.clientId);
      const bootId = randomBytes(4).toString('hex');
      await publishStatus(client, child.name, device.clientId, {
        connected: true,
        ipAddress: device.tunnelAddress.split('/')[0],
        status: 'connected',
        statusCode: '004',
        bootId,
        seq: 1,
      });
      await publishStatus(client, child.name, device.clientId, {
        connected: false,
        ipAddress: '0.0.0.0',
        status: 'idle',
        statusCode: '000',
        bootId,
        seq: 2,
      });
      await publishDc(client, child.name, device.clientId);

      const bodies = await eventually(() => {
        const got = receiver.to(parentHook.path).map((r) => JSON.parse(r.body) as DeliveryBody['payload']);
        expect(got.map((b) => b.type).sort()).toEqual([
          'device.connection',
          'device.connection',
          'vpn.connected',
          'vpn.disconnected',
        ]);
        return got;
      }, 10_000);
      expect(receiver.to(parentHook.path).every((r) => r.verified)).toBe(true);
      const connected = bodies.find((b) => b.type === 'vpn.connected');
      expect(connected?.data).toMatchObject({
        scopeId: child.id,
        deviceId: device.id,
        clientId: device.clientId,
        connected: true,
        ipAddress: device.tunnelAddress.split('/')[0],
        status: 'connected',
        statusCode: '004',
      });
      expect(
        bodies
          .filter((b) => b.type === 'device.connection')
          .map((b) => b.data.deviceConnection)
          .sort(),
      ).toEqual(['CONNECTED', 'DISCONNECTED']);
      await eventually(() => expect(receiver.to(vpnOnly.path)).toHaveLength(1));
      expect(JSON.parse(receiver.to(vpnOnly.path)[0].body)).toMatchObject({ type: 'vpn.connected' });
      // The outcome is recorded once the receiver's answer is back: wait for it, bounded.
      const listed = await eventually(async () => {
        const items = await deliveries(api, tenant.admin.token, parentHook.webhook.id);
        expect(items).toHaveLength(4);
        expect(items.every((x) => x.status === 'DELIVERED' && x.eventId !== null)).toBe(true);
        return items;
      });
      // Newest first.
      const ids = listed.map((x) => BigInt(x.eventId!));
      expect([...ids].sort((a, b) => (a > b ? -1 : a < b ? 1 : 0))).toEqual(ids);
      expect(receiver.to(siblingHook.path)).toHaveLength(0);
      expect(await deliveries(api, sibling.admin.token, siblingHook.webhook.id)).toEqual([]);
    });
  });
});

describe('webhooks to private addresses (WEBHOOK_ALLOW_PRIVATE=false)', () => {
  let api: TestApi;
  let token: string;
  const receiver = new WebhookReceiver();

  beforeAll(async () => {
    await receiver.start();
    api = await startTestApi({ WEBHOOK_POLL_INTERVAL_MS: '50', WEBHOOK_RETRY_DELAYS_MS: '60000' });
    token = (await createTenant(api, await login(api))).admin.token;
  });

  afterAll(async () => {
    await api?.stop();
    await receiver.stop();
  });

  it.each([
    'http://127.0.0.1:8080/hook',
    'http://localhost/hook',
    'http://app.localhost/hook',
    'http://[::1]/hook',
    'http://10.1.2.3/hook',
    'http://172.16.0.1/hook',
    'http://192.168.1.1/hook',
    'http://169.254.169.254/latest/meta-data',
    'http://100.64.0.1/hook',
    'http://[fd00::1]/hook',
    'http://[fe80::1]/hook',
    'http://[::ffff:127.0.0.1]/hook',
    'http://0x7f.1/hook',
    'http://2130706433/hook',
    'http://0.0.0.0/hook',
  ])('should refuse %s with 400', async (url) => {
    const res = await request(api.url)
      .post('/v1/_/webhooks')
      .set(bearer(token))
      .send({ url, events: ['vpn.error'] });
    expectError(res, 400, 'INVALID_ARGUMENT');
    expect(res.body.details).toContain('public address');
    const list = await request(api.url).get('/v1/_/webhooks').set(bearer(token)).expect(200);
    expect(list.body.items).toEqual([]);
  });

  it('should check the address again when sending', async () => {
    // A public literal is accepted; then the stored URL points somewhere private (as a DNS
    // answer that changed would): the attempt is refused and nothing reaches the receiver.
    const w = await createWebhook(api, token, { url: 'https://93.184.215.14/hook', events: ['vpn.error'] });
    const pg = new Client({ connectionString: api.db.url });
    await pg.connect();
    try {
      await pg.query('UPDATE webhook SET url = $1 WHERE id = $2', [receiver.url('/private'), w.id]);
    } finally {
      await pg.end();
    }
    receiver.on('/private', answer(200));
    await sendTest(api, token, w.id);
    const [d] = await eventually(async () => {
      const list = await deliveries(api, token, w.id);
      expect(list[0].attempts).toBe(1);
      expect(list[0].status).toBe('PENDING');
      return list;
    });
    expect(d.lastError).toContain('refused: 127.0.0.1 is a loopback, private or reserved address');
    expect(receiver.to('/private')).toHaveLength(0);
  });
});

describe('webhook outbox across a restart', () => {
  let db: TestDatabase;
  let api: TestApi | undefined;
  const receiver = new WebhookReceiver();
  const env = { ...ENV, WEBHOOK_SECRET_KEY: randomBytes(32).toString('hex'), WEBHOOK_RETRY_DELAYS_MS: '100' };

  beforeAll(async () => {
    await receiver.start();
    db = await createTestDatabase();
  });

  afterAll(async () => {
    await api?.stop();
    await receiver.stop();
    await db?.drop();
  });

  it('should deliver pending deliveries and undispatched events exactly once after a restart', async () => {
    api = await startTestApi(env, { database: db });
    const rootToken = await login(api);
    const tenant = await createTenant(api, rootToken);
    const path = newPath();
    let up = false;
    receiver.on(path, (_n, _req, res) => res.writeHead(up ? 200 : 503).end());
    const w = await createWebhook(api, tenant.admin.token, {
      url: receiver.url(path),
      events: ['device.connection'],
    });
    receiver.setSecret(path, w.secret);
    const device = await createDevice(api, tenant.admin.token);
    const queued = await sendTest(api, tenant.admin.token, w.id);
    // A second endpoint whose receiver hangs: its attempt is in flight when the API stops.
    const hangPath = newPath();
    receiver.on(hangPath, (_n, _req, res) => {
      if (up) res.writeHead(200).end();
    });
    const hanging = await createWebhook(api, tenant.admin.token, {
      url: receiver.url(hangPath),
      events: ['vpn.error'],
    });
    receiver.setSecret(hangPath, hanging.secret);
    const hangQueued = await sendTest(api, tenant.admin.token, hanging.id);
    await eventually(() => expect(receiver.to(path).length).toBeGreaterThanOrEqual(1));
    await eventually(() => expect(receiver.to(hangPath)).toHaveLength(1));
    await api.stop();
    api = undefined;
    const check = new Client({ connectionString: db.url });
    await check.connect();
    try {
      const { rows } = await check.query(
        'SELECT status, attempts, last_error FROM webhook_delivery WHERE id = $1',
        [hangQueued.id],
      );
      // Cut at shutdown and given back: due again, the attempt not counted.
      expect(rows).toEqual([{ status: 'PENDING', attempts: 0, last_error: 'abandoned at shutdown' }]);
    } finally {
      await check.end();
    }

    // While no API runs: a fleet event is stored (as if committed just before the crash) and the
    // receiver comes back.
    const pg = new Client({ connectionString: db.url });
    await pg.connect();
    try {
      await pg.query(
        `INSERT INTO device_event (scope_id, device_id, type, details) VALUES ($1, $2, 'BIRTH', '{}')`,
        [tenant.account.id, device.id],
      );
    } finally {
      await pg.end();
    }
    up = true;
    const failedBefore = receiver.to(path).length;

    api = await startTestApi(env, { database: db });
    const token = await login(api, tenant.admin.username, tenant.admin.password);
    const list = await eventually(async () => {
      const items = await deliveries(api!, token, w.id);
      expect(items.map((x) => `${x.eventType}:${x.status}`).sort()).toEqual([
        'device.connection:DELIVERED',
        'webhook.test:DELIVERED',
      ]);
      return items;
    }, 10_000);
    const got = receiver.to(path);
    expect(got.every((r) => r.verified)).toBe(true);
    const testAttempts = got.filter((r) => r.headers['webhook-id'] === queued.messageId);
    // Every attempt of the test delivery, before and after the restart, carried its one webhook-id.
    expect(testAttempts).toHaveLength(got.length - 1);
    expect(got.slice(0, failedBefore).every((r) => r.headers['webhook-id'] === queued.messageId)).toBe(true);
    const event = list.find((x) => x.eventType === 'device.connection')!;
    expect(got.filter((r) => r.headers['webhook-id'] === event.messageId)).toHaveLength(1);
    expect(JSON.parse(got.find((r) => r.headers['webhook-id'] === event.messageId)!.body)).toMatchObject({
      type: 'device.connection',
      data: { deviceId: device.id, deviceConnection: 'CONNECTED', cause: 'BIRTH' },
    });
    // Successful answers: exactly one per delivery.
    expect(got.length - failedBefore).toBe(2);
    const hung = await eventually(async () => {
      const items = await deliveries(api!, token, hanging.id);
      expect(items.map((x) => x.status)).toEqual(['DELIVERED']);
      return items;
    }, 10_000);
    expect(hung[0].attempts).toBe(1);
    expect(receiver.to(hangPath).map((r) => r.headers['webhook-id'])).toEqual([
      hangQueued.messageId,
      hangQueued.messageId,
    ]);
    expect(receiver.to(hangPath).every((r) => r.verified)).toBe(true);
  });
});

describe('webhook send pump (WEBHOOK_CONCURRENCY=4, no poll between)', () => {
  const CONCURRENCY = 4;
  const BURST = 50;
  let api: TestApi;
  let token: string;
  const receiver = new WebhookReceiver();

  beforeAll(async () => {
    await receiver.start();
    // The longest poll interval: after the first tick, only wake-ups and finished attempts claim.
    api = await startTestApi({
      WEBHOOK_ALLOW_PRIVATE: 'true',
      WEBHOOK_POLL_INTERVAL_MS: '60000',
      WEBHOOK_CONCURRENCY: String(CONCURRENCY),
      WEBHOOK_TIMEOUT_MS: '30000',
      WEBHOOK_RETRY_DELAYS_MS: '60000',
    });
    token = (await createTenant(api, await login(api))).admin.token;
  });

  afterAll(async () => {
    await api?.stop();
    await receiver.stop();
  });

  it('should keep at most WEBHOOK_CONCURRENCY attempts in flight and send a whole burst without waiting for a poll', async () => {
    const path = newPath();
    let open = 0;
    let maxOpen = 0;
    const held: Array<() => void> = [];
    let holding = true;
    receiver.on(path, (_n, _req, res) => {
      open++;
      maxOpen = Math.max(maxOpen, open);
      const reply = () => {
        open--;
        res.writeHead(204).end();
      };
      if (holding) held.push(reply);
      else reply();
    });
    const webhook = await createWebhook(api, token, {
      url: receiver.url(path),
      events: ['device.connection'],
    });
    receiver.setSecret(path, webhook.secret);

    // Every slot busy with an attempt the receiver holds; then the rest of the burst is queued.
    const queued: DeliveryBody[] = [];
    for (let i = 0; i < CONCURRENCY; i++) queued.push(await sendTest(api, token, webhook.id));
    await eventually(() => expect(held).toHaveLength(CONCURRENCY), 10_000);
    for (let i = CONCURRENCY; i < BURST; i++) queued.push(await sendTest(api, token, webhook.id));
    expect(receiver.to(path)).toHaveLength(CONCURRENCY);
    // Let the ticks those wake-ups started end (they found no free slot), so that nothing but the
    // finishing attempts can claim the rest. Not a threshold: the outcome is the same without it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    // Released: the finished attempts claim the rest at once, with no poll tick to help.
    holding = false;
    for (const reply of held) reply();

    const listed = await eventually(async () => {
      const res = await request(api.url)
        .get(`/v1/_/webhooks/${webhook.id}/deliveries?limit=100`)
        .set(bearer(token))
        .expect(200);
      const items = res.body.items as DeliveryBody[];
      expect(items.filter((d) => d.status === 'DELIVERED')).toHaveLength(BURST);
      return items;
    }, 20_000);
    expect(listed.every((d) => d.attempts === 1)).toBe(true);
    const got = receiver.to(path);
    // One request per delivery, each with its own webhook-id, all signed.
    expect(got).toHaveLength(BURST);
    expect(new Set(got.map((r) => r.headers['webhook-id']))).toEqual(new Set(queued.map((d) => d.messageId)));
    expect(got.every((r) => r.verified)).toBe(true);
    // Every slot was used, never more.
    expect(maxOpen).toBe(CONCURRENCY);
  });
});
