// The local VPN Client API over HTTPS (IXON's routes and headers) and its status WebSocket:
// checks every request against the Host/Origin rules, then hands it to the ConnectionManager.
import { IncomingMessage, ServerResponse } from 'node:http';
import { Server, createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';

import { WebSocket, WebSocketServer } from 'ws';

import type { ListenAddress } from './config';
import { ConnectionManager } from './connection-manager';
import { checkOrigin, corsHeaders, isAllowedHost, preflightHeaders, ALLOWED_METHODS } from './http-guard';
import { SettingsError, SettingsStore, validateSettings } from './settings';
import type { ClientStatus } from './status';
import type { TlsMaterial } from './tls';
import { Logger, errorFields } from '@app/edge';

export interface ApiServerOptions {
  manager: ConnectionManager;
  settings: SettingsStore;
  allowedOrigins: readonly string[];
  tls: TlsMaterial;
  logger: Logger;
}

/** The documented error body, as the cloud's. */
export interface ErrorBody {
  result: string;
  error: string;
  details: string;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly result: string,
    message: string,
    readonly details = '',
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

type Handler = (req: IncomingMessage, res: ServerResponse, host: string) => Promise<void>;

const API_VERSION = '2';
const MAX_BODY_BYTES = 16 * 1024;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Visible ASCII: a token with blanks or control characters is not one we could have been given. */
const TOKEN_PATTERN = /^[\x21-\x7e]{1,4096}$/;
const SECTOR_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** Dead WebSocket peers (a closed laptop lid) are dropped after one unanswered ping. */
const WS_HEARTBEAT_MS = 30_000;

export class LocalApiServer {
  private readonly server: Server;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private readonly alive = new WeakMap<WebSocket, boolean>();
  private readonly allowed: ReadonlySet<string>;
  private readonly routes: Readonly<Record<string, Partial<Record<string, Handler>>>>;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly onChange = (status: ClientStatus): void => this.broadcast(status);

  constructor(private readonly options: ApiServerOptions) {
    this.allowed = new Set(options.allowedOrigins);
    this.routes = {
      '/': { GET: (req, res, host) => this.discovery(res, host) },
      '/status': { GET: async (_req, res) => send(res, 200, options.manager.status()) },
      '/connect': { POST: (req, res) => this.connect(req, res) },
      '/disconnect': { POST: async (_req, res) => send(res, 200, await options.manager.disconnect()) },
      '/controller/closed': { POST: async (_req, res) => send(res, 204) },
      '/configuration': {
        GET: async (_req, res) => send(res, 200, options.settings.get()),
        PUT: (req, res) => this.putConfiguration(req, res),
      },
      '/configuration/reset': { POST: async (_req, res) => send(res, 200, await options.settings.reset()) },
    };
    this.server = createServer(
      { cert: options.tls.cert, key: options.tls.key, minVersion: 'TLSv1.2' },
      (req, res) => void this.handle(req, res),
    );
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 30_000;
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.upgrade(req, socket, head),
    );
    // TLS handshakes that fail (a browser that does not trust the certificate yet) are routine.
    this.server.on('tlsClientError', (err) =>
      options.logger.debug({ ...errorFields(err) }, 'TLS handshake failed'),
    );
    this.wss.on('connection', (ws) => this.onConnection(ws));
  }

  listen(address: ListenAddress): Promise<{ url: string; port: number }> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(address.port, address.host, () => {
        this.server.off('error', reject);
        const { port } = this.server.address() as AddressInfo;
        const host = address.host.includes(':') ? `[${address.host}]` : address.host;
        this.options.manager.on('change', this.onChange);
        this.heartbeat = setInterval(() => this.pingClients(), WS_HEARTBEAT_MS);
        this.heartbeat.unref();
        resolve({ url: `https://${host}:${port}`, port });
      });
    });
  }

  async close(): Promise<void> {
    clearInterval(this.heartbeat);
    this.options.manager.off('change', this.onChange);
    for (const ws of this.wss.clients) ws.close(1001, 'vpn-client stopping');
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
    // Sockets handed over to ws are no longer the HTTP server's: end any that are still open.
    for (const ws of this.wss.clients) ws.terminate();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { logger } = this.options;
    const path = pathOf(req.url);
    try {
      const host = req.headers.host;
      res.setHeader('Vary', 'Origin');
      res.setHeader('Cache-Control', 'no-store');
      res.setHeader('X-Content-Type-Options', 'nosniff');
      if (!isAllowedHost(host)) {
        throw new HttpError(
          403,
          'FORBIDDEN',
          'Host not allowed',
          'use https://localhost or https://127.0.0.1',
        );
      }
      const origin = checkOrigin(req.headers.origin, this.allowed);
      if (origin.kind === 'forbidden') {
        throw new HttpError(
          403,
          'FORBIDDEN',
          'Origin not allowed',
          `start the client with --allow-origin ${origin.origin}`,
        );
      }
      if (origin.kind === 'allowed')
        for (const [k, v] of Object.entries(corsHeaders(origin.origin))) res.setHeader(k, v);
      if (req.method === 'OPTIONS') {
        if (origin.kind === 'allowed') {
          const pna = req.headers['access-control-request-private-network'] === 'true';
          for (const [k, v] of Object.entries(preflightHeaders(origin.origin, pna))) res.setHeader(k, v);
        }
        res.setHeader('Allow', ['OPTIONS', ...ALLOWED_METHODS].join(', '));
        send(res, 204);
        return;
      }
      const route = this.routes[path];
      if (route === undefined) throw new HttpError(404, 'NOT_FOUND', `no route ${path}`);
      const handler = req.method === undefined ? undefined : route[req.method];
      if (handler === undefined) {
        throw new HttpError(
          405,
          'METHOD_NOT_ALLOWED',
          `${req.method ?? '?'} is not allowed on ${path}`,
          '',
          {},
          {
            Allow: Object.keys(route).join(', '),
          },
        );
      }
      const version = req.headers['api-version'];
      if (version !== undefined && version !== API_VERSION) {
        throw new HttpError(
          400,
          'INVALID_ARGUMENT',
          `Api-Version ${String(version)} is not supported`,
          'send Api-Version: 2',
        );
      }
      await handler(req, res, host as string);
      logger.debug({ method: req.method, path, status: res.statusCode }, 'request');
    } catch (err) {
      const error =
        err instanceof HttpError
          ? err
          : new HttpError(500, 'INTERNAL_ERROR', 'internal error', err instanceof Error ? err.message : '');
      if (error.status === 500)
        logger.error({ method: req.method, path, ...errorFields(err) }, 'request failed');
      if (error.status === 403) {
        logger.warn(
          {
            method: req.method,
            path,
            status: 403,
            host: req.headers.host,
            origin: req.headers.origin,
            reason: error.message,
          },
          'request refused',
        );
      }
      for (const [k, v] of Object.entries(error.headers)) res.setHeader(k, v);
      const body: ErrorBody & Record<string, unknown> = {
        result: error.result,
        error: error.message,
        details: error.details,
        ...error.extra,
      };
      if (!res.headersSent) send(res, error.status, body);
      else res.destroy();
    }
  }

  private async discovery(res: ServerResponse, host: string): Promise<void> {
    const base = `https://${host}`;
    const link = (rel: string, path: string) => ({ rel, href: `${base}${path}` });
    send(res, 200, {
      links: [
        link('Discovery', '/'),
        link('Connect', '/connect'),
        link('Disconnect', '/disconnect'),
        link('ControllerClosed', '/controller/closed'),
        link('Status', '/status'),
        link('Configuration', '/configuration'),
        link('ConfigurationReset', '/configuration/reset'),
        { rel: 'StatusWebSocket', href: `wss://${host}/` },
      ],
    });
  }

  private async connect(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { headers } = req;
    if (headers['api-version'] !== API_VERSION) {
      throw new HttpError(400, 'INVALID_ARGUMENT', 'Api-Version header must be 2');
    }
    const controller = single(headers['vpn-client-controller-identifier']);
    if (controller === undefined || !UUID_PATTERN.test(controller)) {
      throw new HttpError(400, 'INVALID_ARGUMENT', 'VPN-Client-Controller-Identifier header must be a UUID');
    }
    const token = single(headers['api-access-token']);
    if (token === undefined || !TOKEN_PATTERN.test(token)) {
      throw new HttpError(
        400,
        'INVALID_ARGUMENT',
        'Api-Access-Token header must hold an access token or API key',
      );
    }
    const sector = single(headers['api-sector']);
    if (sector !== undefined && !SECTOR_PATTERN.test(sector)) {
      throw new HttpError(
        400,
        'INVALID_ARGUMENT',
        'Api-Sector header must be 1-64 characters of [A-Za-z0-9._-]',
      );
    }
    const body = await readJson(req);
    const { agentId, companyId } = body as { agentId?: unknown; companyId?: unknown };
    if (typeof agentId !== 'string' || !UUID_PATTERN.test(agentId)) {
      throw new HttpError(400, 'INVALID_ARGUMENT', 'agentId must be the device id (a UUID)');
    }
    if (typeof companyId !== 'string' || !UUID_PATTERN.test(companyId)) {
      throw new HttpError(400, 'INVALID_ARGUMENT', 'companyId must be the account id (a UUID)');
    }
    const outcome = this.options.manager.connect({
      agentId: agentId.toLowerCase(),
      companyId: companyId.toLowerCase(),
      controllerIdentifier: controller.toLowerCase(),
      accessToken: token,
      sector,
    });
    switch (outcome.kind) {
      case 'started':
        return send(res, 202, outcome.status);
      case 'unchanged':
        return send(res, 200, outcome.status);
      case 'conflict':
        throw new HttpError(409, 'CONFLICT', outcome.reason, '', { activeRequest: outcome.activeRequest });
      case 'closed':
        throw new HttpError(503, 'SERVICE_UNAVAILABLE', 'the VPN client is shutting down');
    }
  }

  private async putConfiguration(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let patch;
    try {
      patch = validateSettings(await readJson(req));
    } catch (err) {
      if (err instanceof SettingsError) throw new HttpError(400, 'INVALID_ARGUMENT', err.message);
      throw err;
    }
    send(res, 200, await this.options.settings.update(patch));
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const refuse = (status: number, reason: string): void => {
      this.options.logger.warn(
        { path: pathOf(req.url), status, host: req.headers.host, origin: req.headers.origin, reason },
        'websocket refused',
      );
      const body = JSON.stringify({
        result: status === 403 ? 'FORBIDDEN' : 'NOT_FOUND',
        error: reason,
        details: '',
      });
      socket.end(
        `HTTP/1.1 ${status} ${status === 403 ? 'Forbidden' : 'Not Found'}\r\nConnection: close\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
    };
    socket.on('error', () => undefined);
    if (pathOf(req.url) !== '/') return refuse(404, 'the status WebSocket is at /');
    if (!isAllowedHost(req.headers.host)) return refuse(403, 'Host not allowed');
    if (checkOrigin(req.headers.origin, this.allowed).kind === 'forbidden')
      return refuse(403, 'Origin not allowed');
    this.wss.handleUpgrade(req, socket, head, (ws) => this.wss.emit('connection', ws, req));
  }

  private onConnection(ws: WebSocket): void {
    this.alive.set(ws, true);
    ws.on('pong', () => this.alive.set(ws, true));
    ws.on('error', (err) => this.options.logger.debug({ ...errorFields(err) }, 'websocket error'));
    ws.send(JSON.stringify(this.options.manager.status()));
  }

  private broadcast(status: ClientStatus): void {
    const text = JSON.stringify(status);
    for (const ws of this.wss.clients) if (ws.readyState === WebSocket.OPEN) ws.send(text);
  }

  private pingClients(): void {
    for (const ws of this.wss.clients) {
      if (this.alive.get(ws) === false) {
        ws.terminate();
        continue;
      }
      this.alive.set(ws, false);
      ws.ping();
    }
  }
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status).end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const q = raw.indexOf('?');
  return q < 0 ? raw : raw.slice(0, q);
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? undefined : value;
}

/** The body as JSON; refuses other content types so that only a deliberate JSON call gets this far. */
async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'] ?? '';
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new HttpError(
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      'the body must be JSON (Content-Type: application/json)',
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new HttpError(413, 'PAYLOAD_TOO_LARGE', `the body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new HttpError(400, 'INVALID_ARGUMENT', 'the body is not valid JSON');
  }
}
