/**
 * Talking to the engineer's vpn-client the way a portal does: HTTPS on loopback (its self-signed
 * certificate accepted), JSON bodies, and the status WebSocket.
 */
import { request as httpsRequest } from 'node:https';
import WebSocket from 'ws';

export interface LocalAnswer {
  status: number;
  body: Record<string, unknown>;
}

export function callClient(
  url: string,
  options: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<LocalAnswer> {
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: options.method ?? 'GET',
        rejectUnauthorized: false,
        agent: false,
        headers: {
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: Record<string, unknown> = {};
          try {
            body = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
          } catch {
            body = { text };
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export interface ClientStatusBody {
  status: string;
  statusCode: string;
  activeRequest: '' | Record<string, unknown>;
  steps: Array<{ name: string; code: string; message?: string }>;
  tunnelAddress?: string;
  deviceAddress?: string;
}

/** The status WebSocket: every pushed status object, in order. */
export class ClientStatusSocket {
  readonly pushed: ClientStatusBody[] = [];
  private readonly ws: WebSocket;
  readonly opened: Promise<void>;

  constructor(url: string) {
    this.ws = new WebSocket(url.replace(/^https:/, 'wss:'), { rejectUnauthorized: false });
    this.ws.on('message', (data: Buffer) =>
      this.pushed.push(JSON.parse(data.toString('utf8')) as ClientStatusBody),
    );
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  close(): void {
    this.ws.terminate();
  }
}
