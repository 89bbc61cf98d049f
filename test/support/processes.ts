import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from './database';
import type { DeviceCredentials } from './device-factories';
import { TEST_ADMIN_PASSWORD } from './test-api';

/** Where the e2e global setup compiled the app (see global-setup.ts). */
export function distDir(): string {
  const dir = process.env.TEST_DIST_DIR;
  if (!dir)
    throw new Error('TEST_DIST_DIR is not set: run e2e tests through jest (global setup builds the app)');
  return dir;
}

/** Processes of this test file that have not exited yet (see stopStrayProcesses). */
const running = new Set<LoggedProcess>();

/**
 * Stops every process this test file started that is still running, e.g. one whose
 * start was cut short by a failing or timed-out test. A safety net for afterAll.
 */
export async function stopStrayProcesses(): Promise<void> {
  await Promise.allSettled([...running].map((p) => p.stop('SIGTERM', 5000)));
}

/** A child process whose JSON log lines can be awaited. */
export class LoggedProcess {
  readonly lines: string[] = [];
  private waiters: Array<{ test: (line: string) => boolean; resolve: (line: string) => void }> = [];
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      let i: number;
      while ((i = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, i);
        buffer = buffer.slice(i + 1);
        this.lines.push(line);
        if (process.env.TEST_SHOW_LOGS) console.log(line);
        this.waiters = this.waiters.filter((w) => (w.test(line) ? (w.resolve(line), false) : true));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    running.add(this);
    this.exited = new Promise((resolve) =>
      child.once('exit', (code) => {
        running.delete(this);
        resolve(code);
      }),
    );
  }

  /**
   * Resolves with the first line (past or future) containing `text`; with `fromLine`,
   * only lines from that index on count (pass `lines.length` to wait for a new one).
   */
  waitFor(text: string | RegExp, timeoutMs = 30_000, fromLine = 0): Promise<string> {
    const test = (l: string) => (typeof text === 'string' ? l.includes(text) : text.test(l));
    const seen = this.lines.slice(fromLine).find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `timed out waiting for ${String(text)}; last lines:\n${this.lines.slice(-20).join('\n')}`,
          ),
        );
      }, timeoutMs);
      this.waiters.push({
        test,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  }

  /** Sends a signal and waits for the exit (SIGKILL after graceMs). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

export interface ApiProcess extends LoggedProcess {
  /** Set once the process listens (read back from its "listening" line). */
  url: string;
  mqttUrl: string;
  db: TestDatabase | undefined;
  dataDir: string;
  env: Record<string, string>;
  /** Stops the process and removes its database and data folder. */
  destroy(): Promise<void>;
}

export interface StartApiOptions {
  /** Run on this database instead of a fresh one (e.g. a restart on the same data). */
  database?: TestDatabase;
  /** Use this data folder (embedded Postgres, generated secrets) instead of a fresh one. */
  dataDir?: string;
  /**
   * false: resolve as soon as the process is spawned, to watch it fail (await `exited`).
   * Default true: resolve once it listens; throw (and clean up) if it exits first.
   */
  waitReady?: boolean;
  /**
   * Start the process as the leader of its own process group, as a shell starts a job: a
   * terminal's Ctrl-C is then `process.kill(-pid, 'SIGINT')`, which reaches its children too.
   */
  ownProcessGroup?: boolean;
}

const LISTENING = 'device VPN cloud API listening';

/**
 * Starts the built API (`node dist/apps/api/src/main.js`) as a real process. Unless the env
 * fixes them, its HTTP and MQTT ports are 0: the process binds whatever the OS gives it and
 * the URLs are read back from its "listening" line, so no other process can take a port
 * between picking and binding it. By default it gets a fresh database from the test Postgres
 * and the embedded broker, unless TEST_MQTT_URL is set; pass `DATABASE_URL: ''` in env for
 * the fully embedded defaults. `destroy()` of the returned process drops its database and
 * data folder, also when they were passed in `options`.
 */
export async function startApiProcess(
  env: Record<string, string> = {},
  options: StartApiOptions = {},
): Promise<ApiProcess> {
  const useDb = env.DATABASE_URL === undefined || options.database !== undefined;
  const db = useDb ? (options.database ?? (await createTestDatabase())) : undefined;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'vpncloud-e2e-data-'));
  const fullEnv: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/root',
    PORT: '0',
    MQTT_PORT: '0',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'info',
    ADMIN_PASSWORD: TEST_ADMIN_PASSWORD,
    JWT_SECRET: randomBytes(32).toString('hex'),
    MQTT_CLIENT_ID: `e2e-cloud-${randomBytes(4).toString('hex')}`,
    ...(db ? { DATABASE_URL: db.url } : {}),
    // Throwaway client ids must not leave persistent sessions queueing messages in a shared broker.
    ...(process.env.TEST_MQTT_URL ? { MQTT_URL: process.env.TEST_MQTT_URL, MQTT_CLEAN_SESSION: 'true' } : {}),
    ...env,
    ...(db ? { DATABASE_URL: db.url } : {}),
  };
  for (const [k, v] of Object.entries(fullEnv)) if (v === '') delete fullEnv[k];
  const child = spawn(process.execPath, [join(distDir(), 'apps/api/src/main.js')], {
    env: fullEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.ownProcessGroup === true,
  });
  const proc = new LoggedProcess(child) as ApiProcess;
  proc.url = '';
  proc.mqttUrl = fullEnv.MQTT_URL ?? '';
  proc.db = db;
  proc.dataDir = dataDir;
  proc.env = fullEnv;
  proc.destroy = async () => {
    await proc.stop();
    await db?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  if (options.waitReady === false) return proc;
  try {
    const line = await Promise.race([
      proc.waitFor(LISTENING, 90_000),
      proc.exited.then((code): never => {
        throw new Error(`API exited with ${code}:\n${proc.lines.slice(-30).join('\n')}`);
      }),
    ]);
    const listening = JSON.parse(line) as { url: string; mqttUrl: string };
    proc.url = listening.url;
    proc.mqttUrl = fullEnv.MQTT_URL ?? listening.mqttUrl;
    // A restart keeps the ports the first start got: agents find the embedded broker again there.
    proc.env.PORT = new URL(listening.url).port;
    if (!fullEnv.MQTT_URL) proc.env.MQTT_PORT = new URL(listening.mqttUrl).port;
  } catch (err) {
    await proc.destroy();
    throw err;
  }
  return proc;
}

/**
 * Stops `api` (SIGTERM, or e.g. SIGKILL to simulate a crash) and starts it again
 * with the same environment (ports, MQTT client id, JWT secret), database and
 * data folder. The new process owns the storage: destroy() it, not `api`.
 */
export async function restartApiProcess(
  api: ApiProcess,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<ApiProcess> {
  await api.stop(signal);
  return startApiProcess(
    // An empty value keeps a variable unset (embedded database or broker), as on the first start.
    { ...api.env, DATABASE_URL: api.env.DATABASE_URL ?? '', MQTT_URL: api.env.MQTT_URL ?? '' },
    { database: api.db, dataDir: api.dataDir },
  );
}

export interface AgentOptions {
  broker: string;
  account: string;
  clientId: string;
  username: string;
  password: string;
  args?: string[];
}

/** Starts a real `vpn-agent` process and waits until it has published BIRTH. */
export async function startAgentProcess(o: AgentOptions, waitReady = true): Promise<LoggedProcess> {
  const child = spawn(
    process.execPath,
    [
      join(distDir(), 'apps/vpn-agent/src/main.js'),
      '--broker',
      o.broker,
      '--account',
      o.account,
      '--client-id',
      o.clientId,
      '--username',
      o.username,
      ...(o.args ?? []),
    ],
    {
      env: { PATH: process.env.PATH ?? '', VPN_AGENT_PASSWORD: o.password },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const proc = new LoggedProcess(child);
  if (waitReady) await waitUntilReady(proc, 'agent ready');
  return proc;
}

/**
 * Starts a real agent for a device on the API's broker with the device's issued
 * credentials and waits for its first BIRTH. Fast defaults (short tunnel delay and
 * reconnect period); `args` win.
 */
export function startDeviceAgent(
  api: Pick<ApiProcess, 'mqttUrl'>,
  device: { credentials: DeviceCredentials },
  args: string[] = [],
): Promise<LoggedProcess> {
  return startAgentProcess({
    broker: api.mqttUrl,
    account: device.credentials.account,
    clientId: device.credentials.clientId,
    username: device.credentials.username,
    password: device.credentials.password,
    args: ['--connect-delay-ms', '20', '--reconnect-period-ms', '200', ...args],
  });
}

export interface GatewayOptions {
  broker: string;
  account: string;
  clientId: string;
  username: string;
  password: string;
  listenPort: number;
  interfaceName: string;
  netns: string;
  stateDir: string;
  args?: string[];
}

/** Starts a real `vpn-gateway` process and waits until it has published BIRTH ("gateway ready"). */
export async function startGatewayProcess(o: GatewayOptions): Promise<LoggedProcess> {
  const child = spawn(
    process.execPath,
    [
      join(distDir(), 'apps/vpn-gateway/src/main.js'),
      '--broker',
      o.broker,
      '--account',
      o.account,
      '--client-id',
      o.clientId,
      '--username',
      o.username,
      '--listen-port',
      String(o.listenPort),
      '--interface',
      o.interfaceName,
      '--netns',
      o.netns,
      '--state-dir',
      o.stateDir,
      ...(o.args ?? []),
    ],
    {
      env: { PATH: process.env.PATH ?? '', VPN_GATEWAY_PASSWORD: o.password },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const proc = new LoggedProcess(child);
  await waitUntilReady(proc, 'gateway ready', 60_000);
  return proc;
}

export interface ClientOptions {
  api: string;
  stateDir: string;
  interfaceName: string;
  netns: string;
  args?: string[];
}

/** Starts a real `vpn-client` on a loopback port the OS picks; `url` is read from its "listening" line. */
export async function startClientProcess(o: ClientOptions): Promise<LoggedProcess & { url: string }> {
  const child = spawn(
    process.execPath,
    [
      join(distDir(), 'apps/vpn-client/src/main.js'),
      '--api',
      o.api,
      '--listen',
      '127.0.0.1:0',
      '--state-dir',
      o.stateDir,
      '--interface',
      o.interfaceName,
      '--netns',
      o.netns,
      ...(o.args ?? []),
    ],
    { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const proc = new LoggedProcess(child);
  const line = await waitUntilReady(proc, 'vpn-client listening', 60_000);
  return Object.assign(proc, { url: (JSON.parse(line) as { url: string }).url });
}

/** Waits for `readyText`; if the process exits or the wait runs out, kills it and throws. */
async function waitUntilReady(
  proc: LoggedProcess,
  readyText: string | RegExp,
  timeoutMs = 30_000,
): Promise<string> {
  try {
    return await Promise.race([
      proc.waitFor(readyText, timeoutMs),
      proc.exited.then((code): never => {
        throw new Error(`process exited with ${code}:\n${proc.lines.slice(-30).join('\n')}`);
      }),
    ]);
  } catch (err) {
    // Never leave a process behind that the caller has no handle on.
    await proc.stop('SIGKILL');
    throw err;
  }
}

export interface FleetOptions {
  broker: string;
  account: string;
  /** A JSON file of `[{clientId, username, password}]`, one entry per simulated device. */
  credentialsFile: string;
  count: number;
  args?: string[];
}

/**
 * Starts `vpn-agent simulate`: `count` simulated devices in one process, and waits
 * until all of them have published BIRTH ('fleet ready').
 */
export async function startFleetProcess(o: FleetOptions): Promise<LoggedProcess> {
  const child = spawn(
    process.execPath,
    [
      join(distDir(), 'apps/vpn-agent/src/main.js'),
      'simulate',
      '--broker',
      o.broker,
      '--account',
      o.account,
      '--credentials',
      o.credentialsFile,
      '--count',
      String(o.count),
      ...(o.args ?? []),
    ],
    { env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const proc = new LoggedProcess(child);
  const summary = await waitUntilReady(proc, /"msg":"fleet (partly )?ready"/, 60_000);
  if (!summary.includes('"msg":"fleet ready"')) {
    await proc.stop('SIGKILL');
    throw new Error(`not every simulated device came up: ${summary}`);
  }
  return proc;
}

/**
 * Processes a test file started, stopped together in afterAll whatever happened:
 * agents first (clean stop, in parallel), then API processes (which drop their storage).
 */
export class ProcessGroup {
  private readonly agents = new Set<LoggedProcess>();
  private readonly apis = new Set<ApiProcess>();

  agent<T extends LoggedProcess>(p: T): T {
    this.agents.add(p);
    return p;
  }

  api(p: ApiProcess): ApiProcess {
    this.apis.add(p);
    return p;
  }

  /** Restarts `p` on its own storage (see restartApiProcess); the new process is tracked instead. */
  async restartApi(p: ApiProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<ApiProcess> {
    this.apis.delete(p);
    return this.api(await restartApiProcess(p, signal));
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled([...this.agents].map((a) => a.stop('SIGTERM', 5000)));
    await Promise.allSettled([...this.apis].map((a) => a.destroy()));
    this.agents.clear();
    this.apis.clear();
    await stopStrayProcesses();
  }
}
