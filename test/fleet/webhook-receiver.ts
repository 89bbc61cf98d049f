import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/** One request as the receiver saw it. */
export interface ReceivedRequest {
  path: string;
  headers: Record<string, string>;
  body: string;
  /** Whether the Standard Webhooks signature verified with the path's secret (if one is set). */
  verified: boolean | null;
}

/** What the receiver does with the n-th request (0-based) to a path. */
export type Behaviour = (n: number, req: ReceivedRequest, res: ServerResponse) => void;

export const answer =
  (status: number, headers: Record<string, string> = {}): Behaviour =>
  (_n, _req, res) => {
    res.writeHead(status, headers).end();
  };

/**
 * A real HTTP receiver on 127.0.0.1 (port 0, read back): each path gets a behaviour and, once the
 * webhook is created, its secret; every request is recorded and its signature checked with the
 * `standardwebhooks` package, as an integrator's receiver would.
 */
export class WebhookReceiver {
  readonly requests: ReceivedRequest[] = [];
  private readonly behaviours = new Map<string, Behaviour>();
  private readonly secrets = new Map<string, string>();
  private readonly hanging = new Set<ServerResponse>();
  private server?: Server;
  port = 0;

  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => this.handle(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  on(path: string, behaviour: Behaviour): void {
    this.behaviours.set(path, behaviour);
  }

  setSecret(path: string, secret: string): void {
    this.secrets.set(path, secret);
  }

  to(path: string): ReceivedRequest[] {
    return this.requests.filter((r) => r.path === path);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const headers = Object.fromEntries(
        Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : (v ?? '')]),
      );
      const body = Buffer.concat(chunks).toString('utf8');
      const secret = this.secrets.get(path);
      let verified: boolean | null = null;
      if (secret) {
        try {
          new Webhook(secret).verify(body, headers);
          verified = true;
        } catch {
          verified = false;
        }
      }
      const received: ReceivedRequest = { path, headers, body, verified };
      const n = this.to(path).length;
      this.requests.push(received);
      const behaviour = this.behaviours.get(path) ?? answer(404);
      res.on('close', () => this.hanging.delete(res));
      this.hanging.add(res);
      behaviour(n, received, res);
    });
  }
}
