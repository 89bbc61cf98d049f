// The VPN client in-process over real HTTPS and a real WebSocket: discovery, status, who may
// connect and disconnect, the Host/Origin rules, configuration, the certificate, and a connect
// that fails against an unreachable cloud. Needs `wg` and `ip` (keys, interface cleanup).
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';

import {
  CONNECT_HEADERS,
  SilentCloud,
  StatusSocket,
  TestClient,
  call,
  linkExists,
  refusedUpgrade,
  startTestClient,
  unreachableUrl,
  uuid,
} from '../test/helpers';
import { CERT_FILE, KEY_FILE } from './tls';
import { SETTINGS_FILE } from './settings';
import type { ClientStatus } from './status';
import { eventually } from '../../../test/support/eventually';
import { describeWhen } from '../../../test/support/prerequisites';

const ALLOWED = 'https://portal.example.com';
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2VjcmV0LXNpZ25hdHVyZQ';

function connectBody(agentId = uuid(), companyId = uuid()): string {
  return JSON.stringify({ agentId, companyId });
}

/** Chosen when the file loads: skipped (reported as such) without the tools, a failure in CI. */
const describeHere = describeWhen('VPN client integration test', { tools: ['wg', 'ip'] });

describeHere('VPN client API (in-process, real HTTPS)', () => {
  let t: TestClient;
  let cloud: SilentCloud;

  beforeEach(async () => {
    cloud = new SilentCloud();
    t = await startTestClient({ apiUrl: await cloud.start(), allowedOrigins: [ALLOWED] });
  });

  afterEach(async () => {
    await t?.stop();
    await cloud?.stop();
  });

  it('should answer discovery with absolute links for the Host the request used', async () => {
    const { port, url } = t.client;
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      const res = await call(`${url}/`, { headers: { Host: host } });
      expect(res.status).toBe(200);
      expect(res.json).toEqual({
        links: [
          { rel: 'Discovery', href: `https://${host}/` },
          { rel: 'Connect', href: `https://${host}/connect` },
          { rel: 'Disconnect', href: `https://${host}/disconnect` },
          { rel: 'ControllerClosed', href: `https://${host}/controller/closed` },
          { rel: 'Status', href: `https://${host}/status` },
          { rel: 'Configuration', href: `https://${host}/configuration` },
          { rel: 'ConfigurationReset', href: `https://${host}/configuration/reset` },
          { rel: 'StatusWebSocket', href: `wss://${host}/` },
        ],
      });
    }
  });

  it('should report idle, push status over the WebSocket, refuse a second controller and let anyone disconnect', async () => {
    const { url } = t.client;
    expect((await call(`${url}/status`)).json).toEqual({
      status: 'idle',
      activeRequest: '',
      statusCode: '000',
      steps: [],
    });
    const socket = new StatusSocket(`wss://127.0.0.1:${t.client.port}/`);
    try {
      await socket.opened;
      await eventually(() => expect(socket.messages[0]).toMatchObject({ status: 'idle' }), 10_000);

      const controllerA = uuid();
      const agentId = uuid();
      const companyId = uuid();
      const first = await call(`${url}/connect`, {
        method: 'POST',
        headers: {
          ...CONNECT_HEADERS,
          'VPN-Client-Controller-Identifier': controllerA,
          'Api-Access-Token': TOKEN,
        },
        body: connectBody(agentId, companyId),
      });
      expect(first.status).toBe(202);
      expect(first.json).toMatchObject({
        status: 'connecting',
        statusCode: '002',
        activeRequest: { agentId, companyId, controllerIdentifier: controllerA },
      });
      await eventually(
        () =>
          expect(
            socket.messages.some((m) => m.steps.find((s) => s.name === 'device-vpn')?.code === '002'),
          ).toBe(true),
        10_000,
      );

      const other = await call(`${url}/connect`, {
        method: 'POST',
        headers: {
          ...CONNECT_HEADERS,
          'VPN-Client-Controller-Identifier': uuid(),
          'Api-Access-Token': TOKEN,
        },
        body: connectBody(agentId, companyId),
      });
      expect(other.status).toBe(409);
      expect(other.json).toMatchObject({
        result: 'CONFLICT',
        activeRequest: { agentId, companyId, controllerIdentifier: controllerA },
      });

      const same = await call(`${url}/connect`, {
        method: 'POST',
        headers: {
          ...CONNECT_HEADERS,
          'VPN-Client-Controller-Identifier': controllerA,
          'Api-Access-Token': TOKEN,
        },
        body: connectBody(agentId, companyId),
      });
      expect(same.status).toBe(200);
      expect(same.json).toMatchObject({ status: 'connecting' });

      // No controller header, no token: anyone on this machine may end the session.
      const disconnected = await call(`${url}/disconnect`, { method: 'POST' });
      expect(disconnected.status).toBe(200);
      expect(disconnected.json).toEqual({ status: 'idle', activeRequest: '', statusCode: '000', steps: [] });
      await eventually(
        () => expect(socket.messages[socket.messages.length - 1]).toMatchObject({ status: 'idle' }),
        10_000,
      );
      expect(socket.messages.some((m) => m.status === 'disconnecting')).toBe(true);
      expect(await linkExists(t.config.interfaceName)).toBe(false);

      expect((await call(`${url}/controller/closed`, { method: 'POST' })).status).toBe(204);
      expect(t.logs.join('\n')).not.toContain(TOKEN);
    } finally {
      socket.close();
    }
  });

  it('should refuse a foreign Host (DNS rebinding) and a foreign Origin, even for a simple POST', async () => {
    const { url } = t.client;
    for (const host of [
      'evil.example',
      `evil.example:${t.client.port}`,
      `127.0.0.1.nip.io:${t.client.port}`,
    ]) {
      const res = await call(`${url}/status`, { headers: { Host: host } });
      expect(res.status).toBe(403);
      expect(res.json).toMatchObject({ result: 'FORBIDDEN', error: 'Host not allowed' });
    }

    await call(`${url}/connect`, {
      method: 'POST',
      headers: { ...CONNECT_HEADERS, 'VPN-Client-Controller-Identifier': uuid(), 'Api-Access-Token': TOKEN },
      body: connectBody(),
    });
    // What a hostile page's <form method=post> sends: a simple request with its own Origin.
    const evil = await call(`${url}/disconnect`, {
      method: 'POST',
      headers: { Origin: 'https://evil.example', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'x=1',
    });
    expect(evil.status).toBe(403);
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
    expect(evil.json).toMatchObject({ result: 'FORBIDDEN', error: 'Origin not allowed' });
    const after = (await call(`${url}/status`)).json as { status: string; activeRequest: unknown };
    expect(after.status).not.toBe('idle');
    expect(after.activeRequest).toMatchObject({ agentId: expect.any(String) });
    expect(t.logs.some((l) => l.includes('"request refused"') && l.includes('https://evil.example'))).toBe(
      true,
    );

    const preflightEvil = await call(`${url}/connect`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://evil.example', 'Access-Control-Request-Method': 'POST' },
    });
    expect(preflightEvil.status).toBe(403);
    expect(preflightEvil.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('should answer the allowed origin with CORS headers and a preflight for the IXON headers', async () => {
    const { url } = t.client;
    const preflight = await call(`${url}/connect`, {
      method: 'OPTIONS',
      headers: {
        Origin: ALLOWED,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers':
          'api-version,vpn-client-controller-identifier,api-access-token,content-type',
        'Access-Control-Request-Private-Network': 'true',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(preflight.headers['access-control-allow-methods']).toBe('GET, POST, PUT');
    expect(preflight.headers['access-control-allow-headers']).toContain('VPN-Client-Controller-Identifier');
    expect(preflight.headers['access-control-allow-private-network']).toBe('true');
    expect(preflight.headers.vary).toBe('Origin');

    const status = await call(`${url}/status`, { headers: { Origin: ALLOWED } });
    expect(status.status).toBe(200);
    expect(status.headers['access-control-allow-origin']).toBe(ALLOWED);
    expect(status.headers.vary).toBe('Origin');
    const noOrigin = await call(`${url}/status`);
    expect(noOrigin.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('should refuse WebSocket upgrades from a foreign Origin or Host', async () => {
    const wsUrl = `wss://127.0.0.1:${t.client.port}/`;
    expect(await refusedUpgrade(wsUrl, { Origin: 'https://evil.example' })).toBe(403);
    expect(await refusedUpgrade(wsUrl, { Host: 'evil.example' })).toBe(403);
    expect(await refusedUpgrade(`wss://127.0.0.1:${t.client.port}/status`, {})).toBe(404);
    expect(t.logs.some((l) => l.includes('"websocket refused"') && l.includes('https://evil.example'))).toBe(
      true,
    );
    const allowed = new StatusSocket(wsUrl, { Origin: ALLOWED });
    try {
      await allowed.opened;
      await eventually(() => expect(allowed.messages).toHaveLength(1), 10_000);
    } finally {
      allowed.close();
    }
  });

  it('should check the connect headers and body', async () => {
    const { url } = t.client;
    const good = {
      ...CONNECT_HEADERS,
      'VPN-Client-Controller-Identifier': uuid(),
      'Api-Access-Token': TOKEN,
    };
    const cases: Array<[Record<string, string>, string, number]> = [
      [{ ...good, 'Api-Version': '1' }, connectBody(), 400],
      [{ ...good, 'Api-Version': '' }, connectBody(), 400],
      [{ ...good, 'VPN-Client-Controller-Identifier': 'not-a-uuid' }, connectBody(), 400],
      [{ ...good, 'Api-Access-Token': '' }, connectBody(), 400],
      [{ ...good, 'Api-Sector': 'a b' }, connectBody(), 400],
      [good, JSON.stringify({ agentId: 'x', companyId: uuid() }), 400],
      [good, JSON.stringify({ agentId: uuid() }), 400],
      [good, '{not json', 400],
      [{ ...good, 'Content-Type': 'text/plain' }, connectBody(), 415],
      [good, JSON.stringify({ agentId: uuid(), companyId: uuid(), pad: 'x'.repeat(20_000) }), 413],
    ];
    const withoutVersion: Record<string, string> = { ...good };
    delete withoutVersion['Api-Version'];
    cases.push([withoutVersion, connectBody(), 400]);
    for (const [headers, body, status] of cases) {
      const res = await call(`${url}/connect`, { method: 'POST', headers, body });
      expect({ status: res.status, headers }).toEqual({ status, headers });
      expect(Object.keys(res.json as object).sort()).toEqual(['details', 'error', 'result']);
    }
    expect((await call(`${url}/status`)).json).toMatchObject({ status: 'idle' });
    expect((await call(`${url}/nowhere`)).status).toBe(404);
    expect((await call(`${url}/nowhere`)).json).toMatchObject({ result: 'NOT_FOUND' });
    const wrongMethod = await call(`${url}/status`, { method: 'DELETE' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.allow).toBe('GET');
  });

  it('should read, change (persisted), validate and reset the configuration', async () => {
    const { url } = t.client;
    const defaults = { handshakeTimeoutMs: 10000, pingTimeoutMs: 10000, deviceConnectTimeoutMs: 30000 };
    expect((await call(`${url}/configuration`)).json).toEqual(defaults);
    const put = await call(`${url}/configuration`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ pingTimeoutMs: 3000 }),
    });
    expect(put.status).toBe(200);
    expect(put.json).toEqual({ ...defaults, pingTimeoutMs: 3000 });
    expect(JSON.parse(readFileSync(join(t.stateDir, SETTINGS_FILE), 'utf8'))).toEqual({
      ...defaults,
      pingTimeoutMs: 3000,
    });
    for (const body of ['{"pingTimeoutMs": -5}', '{"unknown": 1}', '[]', 'nope']) {
      const bad = await call(`${url}/configuration`, {
        method: 'PUT',
        headers: { 'Content-Type': 'application/json' },
        body,
      });
      expect(bad.status).toBe(400);
      expect(bad.json).toMatchObject({ result: 'INVALID_ARGUMENT' });
    }
    expect((await call(`${url}/configuration`)).json).toEqual({ ...defaults, pingTimeoutMs: 3000 });
    const reset = await call(`${url}/configuration/reset`, { method: 'POST' });
    expect(reset.json).toEqual(defaults);
    expect((await call(`${url}/configuration`)).json).toEqual(defaults);
  });
});

describeHere('VPN client certificate', () => {
  it('should serve a certificate valid for 127.0.0.1 and localhost, keep its key private and reuse it', async () => {
    const first = await startTestClient();
    let second: TestClient | undefined;
    try {
      const cert = readFileSync(join(first.stateDir, CERT_FILE), 'utf8');
      expect(statSync(join(first.stateDir, KEY_FILE)).mode & 0o777).toBe(0o600);
      expect(statSync(join(first.stateDir, 'wireguard-private.key')).mode & 0o777).toBe(0o600);
      // Verified against the generated certificate: its names must match both loopback names.
      expect((await call(`${first.client.url}/status`, { ca: cert })).status).toBe(200);
      const port = first.client.port;
      expect(
        (await call(`https://localhost:${port}/status`, { ca: cert, headers: { Host: `localhost:${port}` } }))
          .status,
      ).toBe(200);
      const served = await servedFingerprint(port);
      expect(served).toBe(first.client.fingerprint256);
      const publicKey = first.client.publicKey;
      await first.stop(true);

      second = await startTestClient({ stateDir: first.stateDir });
      expect(second.client.fingerprint256).toBe(first.client.fingerprint256);
      expect(await servedFingerprint(second.client.port)).toBe(first.client.fingerprint256);
      expect(readFileSync(join(first.stateDir, CERT_FILE), 'utf8')).toBe(cert);
      expect(second.client.publicKey).toBe(publicKey);
      expect(second.logs.join('\n')).not.toContain('generated a self-signed TLS certificate');
    } finally {
      await second?.stop(true);
      await first.stop(true).catch(() => undefined);
      rmSync(first.stateDir, { recursive: true, force: true });
    }
  });
});

describeHere('VPN client connect against an unreachable cloud', () => {
  it('should end in error 110 with an actionable message and leave nothing behind', async () => {
    const t = await startTestClient({ apiUrl: await unreachableUrl() });
    try {
      const res = await call(`${t.client.url}/connect`, {
        method: 'POST',
        headers: {
          ...CONNECT_HEADERS,
          'VPN-Client-Controller-Identifier': uuid(),
          'Api-Access-Token': TOKEN,
        },
        body: connectBody(),
      });
      expect(res.status).toBe(202);
      const status = await eventually(async () => {
        const s = (await call(`${t.client.url}/status`)).json as ClientStatus;
        expect(s.status).toBe('error');
        return s;
      }, 10_000);
      expect(status).toMatchObject({ statusCode: '110' });
      const signIn = status.steps[0];
      expect(signIn).toMatchObject({ name: 'sign-in', code: '110' });
      expect(signIn.message).toMatch(/check --api.*could not be reached/);
      expect(await linkExists(t.config.interfaceName)).toBe(false);
      expect(t.logs.join('\n')).not.toContain(TOKEN);
      expect((await call(`${t.client.url}/disconnect`, { method: 'POST' })).json).toMatchObject({
        status: 'idle',
        statusCode: '000',
      });
    } finally {
      await t.stop();
    }
  });
});

function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      { host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost' },
      () => {
        resolve(socket.getPeerCertificate().fingerprint256);
        socket.end();
      },
    );
    socket.on('error', reject);
  });
}
