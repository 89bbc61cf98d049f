// The browser rules with a real headless Chromium: a page from the allowed origin reads the status,
// connects (CORS preflight with the IXON headers) and receives WebSocket pushes; a page from any
// other origin gets nothing, and its simple cross-origin POST /disconnect (fetch no-cors and a form
// post) is refused by the client (403 in its log, state unchanged). Needs /usr/bin/chromium.
import { mkdtempSync, rmSync } from 'node:fs';
import { Server, createServer } from 'node:http';
import { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { BrowserContext, chromium } from 'playwright-core';

import { SilentCloud, TestClient, call, startTestClient, uuid } from '../test/helpers';
import type { ClientStatus } from './status';
import { eventually } from '../../../test/support/eventually';
import { describeWhen } from '../../../test/support/prerequisites';

jest.setTimeout(120_000);

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJicm93c2VyIn0.YnJvd3Nlci10ZXN0';

/** Serves one HTML page at / (and answers anything else with 204, e.g. a favicon). */
class PageServer {
  html = '';
  private readonly server: Server = createServer((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(this.html);
    } else {
      res.writeHead(204).end();
    }
  });
  private readonly sockets = new Set<Socket>();

  async start(): Promise<string> {
    this.server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The script both pages run; results land in `window.results` for the test to read. */
function pageScript(clientUrl: string, connect: { agentId: string; companyId: string } | undefined): string {
  const wsUrl = clientUrl.replace('https://', 'wss://');
  return `<!doctype html><html><body><iframe name="sink" style="display:none"></iframe><script>
const base = ${JSON.stringify(clientUrl)};
window.results = { messages: [], wsOpened: false, wsFailed: false };
fetch(base + '/status')
  .then((r) => r.json())
  .then((j) => { window.results.status = j; })
  .catch((e) => { window.results.statusError = String(e); });
const ws = new WebSocket(${JSON.stringify(wsUrl)});
ws.onopen = () => { window.results.wsOpened = true; };
ws.onmessage = (e) => { window.results.messages.push(JSON.parse(e.data)); };
ws.onerror = () => { window.results.wsFailed = true; };
window.connect = () => fetch(base + '/connect', {
  method: 'POST',
  headers: {
    'Api-Version': '2',
    'VPN-Client-Controller-Identifier': ${JSON.stringify(uuid())},
    'Api-Access-Token': ${JSON.stringify(TOKEN)},
    'Content-Type': 'application/json',
  },
  body: JSON.stringify(${JSON.stringify(connect ?? {})}),
}).then((r) => { window.results.connectStatus = r.status; }, (e) => { window.results.connectError = String(e); });
window.attack = () => {
  fetch(base + '/disconnect', { method: 'POST', mode: 'no-cors' })
    .then(() => { window.results.noCorsSent = true; }, () => { window.results.noCorsSent = true; });
  const form = document.createElement('form');
  form.method = 'POST';
  form.action = base + '/disconnect';
  form.target = 'sink';
  document.body.appendChild(form);
  form.submit();
};
</script></body></html>`;
}

let userDataDir: string | undefined;
let context: BrowserContext | undefined;
let client: TestClient | undefined;
const good = new PageServer();
const evil = new PageServer();
const cloud = new SilentCloud();
const started: Array<{ stop(): Promise<void> }> = [];
let goodOrigin = '';
let evilOrigin = '';

/** Chosen when the file loads: skipped (reported as such) without the tools, a failure in CI. */
const describeHere = describeWhen('VPN client browser test', { tools: [CHROMIUM, 'wg', 'ip'] });

beforeAll(async () => {
  goodOrigin = await good.start();
  started.push(good);
  evilOrigin = await evil.start();
  started.push(evil);
  const cloudUrl = await cloud.start();
  started.push(cloud);
  client = await startTestClient({ apiUrl: cloudUrl, allowedOrigins: [goodOrigin] });
  const connect = { agentId: uuid(), companyId: uuid() };
  good.html = pageScript(client.client.url, connect);
  evil.html = pageScript(client.client.url, connect);
  expect(evilOrigin).not.toBe(goodOrigin);

  userDataDir = mkdtempSync(join(tmpdir(), 'vpn-client-chromium-'));
  // The flags a root CI box needs; the certificate is self-signed, as on an engineer's PC before trusting it.
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--ignore-certificate-errors',
    ],
  });
}, 90_000);

afterAll(async () => {
  await context?.close().catch(() => undefined);
  await client?.stop().catch(() => undefined);
  for (const server of started) await server.stop().catch(() => undefined);
  if (userDataDir !== undefined) rmSync(userDataDir, { recursive: true, force: true });
});

interface PageResults {
  status?: ClientStatus;
  statusError?: string;
  messages: ClientStatus[];
  wsOpened: boolean;
  wsFailed: boolean;
  connectStatus?: number;
  connectError?: string;
  noCorsSent?: boolean;
}

describeHere('VPN client from a real browser', () => {
  it('should serve the allowed origin (status, connect, WebSocket pushes) and refuse everything from another origin', async () => {
    if (context === undefined || client === undefined) return;
    const url = client.client.url;

    const goodPage = await context.newPage();
    await goodPage.goto(`${goodOrigin}/`);
    const read = async (page: typeof goodPage): Promise<PageResults> =>
      page.evaluate<PageResults>('window.results');
    const first = await eventually(async () => {
      const r = await read(goodPage);
      expect(r.status).toBeDefined();
      expect(r.messages.length).toBeGreaterThanOrEqual(1);
      return r;
    }, 10_000);
    expect(first.status).toMatchObject({ status: 'idle', statusCode: '000' });
    expect(first.messages[0]).toMatchObject({ status: 'idle' });

    // A real preflight with the IXON headers, then the connect itself, then its push.
    await goodPage.evaluate('window.connect()');
    const connected = await eventually(async () => {
      const r = await read(goodPage);
      expect(r.connectStatus).toBe(202);
      expect(r.messages.some((m) => m.status === 'connecting')).toBe(true);
      return r;
    }, 10_000);
    expect(connected.connectError).toBeUndefined();
    const before = (await call(`${url}/status`)).json as ClientStatus;
    expect(before.status).toBe('connecting');

    const evilPage = await context.newPage();
    const refusedBefore = refusals(client.logs).length;
    await evilPage.goto(`${evilOrigin}/`);
    await evilPage.evaluate('window.attack()');
    const attacked = await eventually(async () => {
      const r = await read(evilPage);
      expect(r.statusError).toBeDefined();
      expect(r.wsFailed).toBe(true);
      expect(r.noCorsSent).toBe(true);
      // The client answered 403 to the status read, the WebSocket, and both POSTs to /disconnect.
      const refused = refusals(client?.logs ?? []).slice(refusedBefore);
      expect(refused.filter((l) => l.path === '/disconnect' && l.status === 403)).toHaveLength(2);
      expect(refused.some((l) => l.path === '/status')).toBe(true);
      expect(refused.some((l) => l.msg === 'websocket refused')).toBe(true);
      return r;
    }, 10_000);
    expect(attacked.status).toBeUndefined();
    expect(attacked.wsOpened).toBe(false);
    expect(attacked.messages).toEqual([]);
    for (const line of refusals(client.logs).slice(refusedBefore)) {
      expect(line.origin).toBe(evilOrigin);
    }

    // Nothing changed: the request the allowed page started is still the active one.
    const after = (await call(`${url}/status`)).json as ClientStatus;
    expect(after.status).not.toBe('idle');
    expect(after.activeRequest).toEqual(before.activeRequest);
    await goodPage.close();
    await evilPage.close();
  });
});

interface RefusalLine {
  msg: string;
  path: string;
  status: number;
  origin?: string;
}

function refusals(logs: readonly string[]): RefusalLine[] {
  return logs
    .map((l) => JSON.parse(l) as RefusalLine)
    .filter((l) => l.msg === 'request refused' || l.msg === 'websocket refused');
}
