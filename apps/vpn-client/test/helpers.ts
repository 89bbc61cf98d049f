// Test helpers for the VPN client's integration tests: the client started in-process on port 0
// with a temp state dir and captured logs, HTTPS calls that trust its certificate, WebSocket
// clients, and the checks for the tools (and root) the tests need.
import { ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { Server, createServer as createHttpServer, IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';

import pino from 'pino';
import WebSocket from 'ws';

import { RunningClient, startVpnClient } from '../src/client';
import { ClientConfig } from '../src/config';
import type { ClientStatus } from '../src/status';
import { runSystemCommand } from '@app/edge';
import { eventually } from '../../../test/support/eventually';

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  json: unknown;
}

export interface CallOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** Trust this certificate (PEM) instead of skipping verification. */
  ca?: string;
}

/** One HTTPS call; without `ca` the self-signed certificate is accepted unverified. */
export function call(url: string, options: CallOptions = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method: options.method ?? 'GET',
        headers: options.headers,
        ...(options.ca !== undefined ? { ca: options.ca } : { rejectUnauthorized: false }),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = text === '' ? undefined : (JSON.parse(text) as unknown);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface TestClient {
  client: RunningClient;
  config: ClientConfig;
  stateDir: string;
  logs: string[];
  /** Closes the client; removes the state dir unless told to keep it (for a restart). */
  stop(keepStateDir?: boolean): Promise<void>;
}

/** A short random interface name: wireguard-go's control socket is one file per name, system-wide. */
export function testInterfaceName(prefix = 'vct'): string {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

export async function startTestClient(overrides: Partial<ClientConfig> = {}): Promise<TestClient> {
  const stateDir = overrides.stateDir ?? mkdtempSync(join(tmpdir(), 'vpn-client-int-'));
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') logs.push(line);
      if (process.env.TEST_SHOW_LOGS) process.stdout.write(chunk);
      done();
    },
  });
  const config: ClientConfig = {
    apiUrl: 'http://127.0.0.1:9',
    listen: { host: '127.0.0.1', port: 0 },
    interfaceName: testInterfaceName(),
    netns: undefined,
    tls: undefined,
    allowedOrigins: [],
    logLevel: 'debug',
    ...overrides,
    stateDir,
  };
  let client: RunningClient;
  try {
    client = await startVpnClient(config, pino({ level: config.logLevel }, sink));
  } catch (err) {
    if (overrides.stateDir === undefined) rmSync(stateDir, { recursive: true, force: true });
    throw err;
  }
  return {
    client,
    config,
    stateDir,
    logs,
    stop: async (keepStateDir = false) => {
      await client.close();
      if (!keepStateDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** A loopback URL nothing listens on: a port bound, read back and released. */
export async function unreachableUrl(): Promise<string> {
  const server = createHttpServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `http://127.0.0.1:${port}`;
}

/**
 * A "cloud" that signs anyone in and then never answers: a connect stays in its device-vpn step
 * (the request active) until someone disconnects, for as long as the client's device timeout.
 */
export class SilentCloud {
  readonly server: Server = createHttpServer((req, res) => {
    if (req.method === 'GET' && req.url === '/v1/authentication/info') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ tokenId: 't', scopeId: 's', role: 'operator', permissions: ['vpn:connect'] }));
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

/** A WebSocket to the client that records every status pushed to it. */
export class StatusSocket {
  readonly messages: ClientStatus[] = [];
  readonly ws: WebSocket;
  readonly opened: Promise<void>;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.ws = new WebSocket(url, { rejectUnauthorized: false, headers });
    this.ws.on('message', (data: Buffer) =>
      this.messages.push(JSON.parse(data.toString('utf8')) as ClientStatus),
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

/** Resolves with the HTTP status a refused WebSocket upgrade was answered with. */
export function refusedUpgrade(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { rejectUnauthorized: false, headers });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the WebSocket upgrade was accepted'));
    });
    ws.once('error', () => undefined);
  });
}

export async function linkExists(ifname: string, netns?: string): Promise<boolean> {
  const args = ['link', 'show', 'dev', ifname];
  return runSystemCommand('ip', netns === undefined ? args : ['netns', 'exec', netns, 'ip', ...args]).then(
    () => true,
    () => false,
  );
}

export const CONNECT_HEADERS = {
  'Api-Version': '2',
  'Content-Type': 'application/json',
};

export function uuid(): string {
  const hex = randomBytes(16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const REPO_ROOT = join(__dirname, '..', '..', '..');

/** The client as a real process (TypeScript run through ts-node, no build needed), with its log lines. */
export class ClientProcess {
  readonly lines: string[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  private buffer = '';

  constructor(args: readonly string[], env: Record<string, string> = {}) {
    this.child = spawn(
      process.execPath,
      [
        '-r',
        'ts-node/register/transpile-only',
        '-r',
        'tsconfig-paths/register',
        join(REPO_ROOT, 'apps/vpn-client/src/main.ts'),
        ...args,
      ],
      {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const onData = (chunk: Buffer): void => {
      this.buffer += chunk.toString('utf8');
      let i: number;
      while ((i = this.buffer.indexOf('\n')) >= 0) {
        this.lines.push(this.buffer.slice(0, i));
        this.buffer = this.buffer.slice(i + 1);
      }
    };
    this.child.stdout?.on('data', onData);
    this.child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** The first log line (JSON) with this `msg`; throws if the process exits or the deadline passes. */
  async waitForMessage(msg: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
    const find = (): Record<string, unknown> | undefined => {
      for (const line of this.lines) {
        try {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          if (parsed.msg === msg) return parsed;
        } catch {
          // not a log line
        }
      }
      return undefined;
    };
    return eventually(() => {
      const found = find();
      if (found !== undefined) return found;
      if (this.child.exitCode !== null) {
        throw new Error(`vpn-client exited with ${this.child.exitCode}:\n${this.lines.join('\n')}`);
      }
      throw new Error(`no "${msg}" line yet:\n${this.lines.slice(-20).join('\n')}`);
    }, timeoutMs);
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves with the exit code. */
  async stop(graceMs = 15_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
