import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

import { provisionDevices } from './provision';

// A stand-in for the REST API's device routes (README, REST conventions), just enough to check the client's calls.
function fakeApi(): { server: Server; calls: string[]; url: () => string } {
  const calls: string[] = [];
  const devices = new Map<string, string>([['sim-existing', 'id-existing']]);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      calls.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      const send = (status: number, json: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
      };
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'POST' && url.pathname === '/v1/authentication/apikey') {
        return send(200, { tokenId: 'token-from-key' });
      }
      if (req.headers.authorization === undefined)
        return send(401, { result: 'UNAUTHORIZED', error: 'no token' });
      if (req.method === 'POST' && url.pathname === '/v1/_/devices') {
        const { clientId } = JSON.parse(body) as { clientId: string };
        if (devices.has(clientId)) return send(409, { result: 'ENTRY_EXISTS', error: 'Device exists' });
        devices.set(clientId, `id-${clientId}`);
        return send(201, { id: `id-${clientId}`, clientId });
      }
      if (req.method === 'GET' && url.pathname === '/v1/_/devices') {
        const id = devices.get(url.searchParams.get('clientId') ?? '');
        return send(200, { items: id ? [{ id }] : [], size: id ? 1 : 0, limitExceeded: false });
      }
      const creds = /^\/v1\/_\/devices\/([^/]+)\/credentials$/.exec(url.pathname);
      if (req.method === 'POST' && creds)
        return send(201, {
          username: `u-${creds[1]}`,
          password: 'secret',
          clientId: 'ignored',
          account: 'acme',
        });
      send(404, { result: 'NOT_FOUND', error: 'no route' });
    });
  });
  return { server, calls, url: () => `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('provisionDevices', () => {
  const api = fakeApi();
  beforeAll(() => new Promise<void>((resolve) => api.server.listen(0, '127.0.0.1', resolve)));
  afterAll(() => new Promise<void>((resolve) => api.server.close(() => resolve())));

  it('should create each device, fetch its credentials, and reuse a device that already exists', async () => {
    const creds = await provisionDevices({
      apiUrl: api.url(),
      token: 't0',
      clientIds: ['sim-a', 'sim-existing', 'sim-b'],
      concurrency: 2,
    });
    expect(creds).toEqual([
      { clientId: 'sim-a', username: 'u-id-sim-a', password: 'secret', account: 'acme' },
      { clientId: 'sim-existing', username: 'u-id-existing', password: 'secret', account: 'acme' },
      { clientId: 'sim-b', username: 'u-id-sim-b', password: 'secret', account: 'acme' },
    ]);
    expect(api.calls).toContain('GET /v1/_/devices?clientId=sim-existing Bearer t0');
  });

  it('should exchange an API key for a token first', async () => {
    await provisionDevices({ apiUrl: api.url(), apiKey: 'k', clientIds: ['sim-c'], concurrency: 1 });
    expect(api.calls).toContain('POST /v1/_/devices Bearer token-from-key');
  });

  it('should fail with the API error body when a call is refused', async () => {
    await expect(
      provisionDevices({ apiUrl: `${api.url()}/nowhere/`, token: 't', clientIds: ['sim-d'], concurrency: 1 }),
    ).rejects.toThrow(/HTTP 404/);
  });
});
