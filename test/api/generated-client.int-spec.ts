import createClient from 'openapi-fetch';
import type { paths } from '../generated/api-types';
import { startTestApi, TEST_ADMIN_PASSWORD, type TestApi } from '../support/test-api';

/**
 * What an integrator does: generate types from openapi.json (openapi-typescript) and
 * call the API through openapi-fetch. Type errors here fail `npm run typecheck`.
 */
describe('a client generated from the OpenAPI spec', () => {
  let api: TestApi;

  beforeAll(async () => {
    api = await startTestApi();
  });

  afterAll(async () => {
    await api?.stop();
  });

  it('should sign in, register a device and read its VPN status with typed calls', async () => {
    const anonymous = createClient<paths>({ baseUrl: api.url });
    const login = await anonymous.POST('/v1/authentication/user', {
      body: { username: 'admin', password: TEST_ADMIN_PASSWORD },
    });
    expect(login.response.status).toBe(200);
    const token = login.data?.tokenId ?? '';
    const client = createClient<paths>({ baseUrl: api.url, headers: { Authorization: `Bearer ${token}` } });

    const created = await client.POST('/v1/{scopeId}/devices', {
      params: { path: { scopeId: '_' } },
      body: { clientId: 'gen-client-1', displayName: 'Generated client' },
    });
    expect(created.response.status).toBe(201);
    const deviceId = created.data?.id ?? '';
    expect(created.data?.tunnelAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);

    const status = await client.GET('/v1/{scopeId}/devices/{deviceId}/vpn', {
      params: { path: { scopeId: '_', deviceId } },
    });
    expect(status.data).toEqual({
      connected: false,
      ipAddress: '0.0.0.0',
      status: 'idle',
      statusCode: '000',
      tunnel: null,
      deviceConnection: 'NEVER_CONNECTED',
      reportedOn: null,
    });

    const refused = await client.POST('/v1/{scopeId}/devices/{deviceId}/vpn/_connect', {
      params: { path: { scopeId: '_', deviceId }, query: { timeout: 1000 } },
    });
    expect(refused.response.status).toBe(409);
    expect(refused.error).toMatchObject({ result: 'DEVICE_NOT_CONNECTED' });

    const list = await client.GET('/v1/{scopeId}/devices', {
      params: { path: { scopeId: '_' }, query: { clientId: 'gen-client-1', askTotalCount: true } },
    });
    expect(list.data).toMatchObject({ size: 1, totalCount: 1, limitExceeded: false });

    // Walking the fleet by cursor, typed: nextCursor comes back as the next page's cursor.
    await client.POST('/v1/{scopeId}/devices', {
      params: { path: { scopeId: '_' } },
      body: { clientId: 'gen-client-2' },
    });
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.GET('/v1/{scopeId}/vpn/status', {
        params: { path: { scopeId: '_' }, query: { limit: 1, ...(cursor ? { cursor } : {}) } },
      });
      expect(page.response.status).toBe(200);
      seen.push(...(page.data?.items.map((i) => i.clientId) ?? []));
      cursor = page.data?.nextCursor;
    } while (cursor && seen.length < 10);
    expect(seen).toEqual(['gen-client-1', 'gen-client-2']);
  });
});
