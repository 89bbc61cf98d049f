import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { AppModule } from './app.module';
import { configureApp, expressErrorHandler } from './app.setup';
import type { AppConfig } from './config/app-config';
import { PinoNestLogger } from './common/logging';
import type { EmbeddedDatabase } from './database/embedded-postgres';
import { EmbeddedBroker } from './mqtt/embedded-broker';

export interface RunningApi {
  app: NestExpressApplication;
  config: AppConfig;
  url: string;
  /** The broker the service uses: MQTT_URL, or the embedded one on the port it actually bound. */
  mqttUrl: string;
  stop(): Promise<void>;
}

/** Without JWT_SECRET, a secret is generated once and kept in the data folder so tokens survive restarts. */
function resolveJwtSecret(config: AppConfig): string {
  if (!config.jwtSecretGenerated) return config.jwtSecret;
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const file = join(config.dataDir, 'jwt-secret');
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  const secret = randomBytes(48).toString('base64url');
  writeFileSync(file, secret + '\n', { mode: 0o600 });
  return secret;
}

/** The error startApi rejects with when its signal is aborted (a SIGTERM during start-up). */
export function isStartAborted(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new DOMException('start-up aborted', 'AbortError');
}

/**
 * Starts the whole service: the embedded database when DATABASE_URL is unset,
 * then the Nest app (which starts the embedded broker when MQTT_URL is unset).
 * Used by main.ts and by the tests, so both boot the same way.
 *
 * Aborting `signal` stops a start that is under way: whatever was started so far is
 * stopped (Postgres last) and the promise rejects with an AbortError. A start that
 * fails stops what it started the same way before rejecting.
 */
export async function startApi(
  baseConfig: AppConfig,
  logger: Logger,
  signal?: AbortSignal,
): Promise<RunningApi> {
  let embeddedDb: EmbeddedDatabase | undefined;
  const config: AppConfig = { ...baseConfig, jwtSecret: resolveJwtSecret(baseConfig) };
  if (!config.databaseUrl) {
    const pgLog = logger.child({ context: 'EmbeddedPostgres' });
    logger.info({ dataDir: config.dataDir }, 'DATABASE_URL not set: starting embedded PostgreSQL');
    // Loaded only when needed: it is an ES module, and tests run the app with a given database.
    const { startEmbeddedPostgres } = await import('./database/embedded-postgres');
    embeddedDb = await startEmbeddedPostgres({
      dataDir: config.dataDir,
      log: (l) => pgLog.debug(l.trim()),
      signal,
    });
    config.databaseUrl = embeddedDb.url;
  }
  let app: NestExpressApplication | undefined;
  try {
    throwIfAborted(signal);
    app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
      logger: new PinoNestLogger(logger),
      abortOnError: false,
    });
    configureApp(app, config, logger);
    throwIfAborted(signal);
    await app.init();
    app.use(expressErrorHandler());
    throwIfAborted(signal);
    await app.listen(config.port);
    throwIfAborted(signal);
  } catch (err) {
    await app
      ?.close()
      .catch((closeErr: unknown) => logger.error({ err: closeErr }, 'closing after a failed start'));
    await embeddedDb?.stop().catch(() => undefined);
    throw err;
  }
  const server = app.getHttpServer();
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const running = app;
  let stopping: Promise<void> | undefined;
  return {
    app: running,
    config,
    url: `http://127.0.0.1:${port}`,
    mqttUrl: config.mqttUrl ?? running.get(EmbeddedBroker).url,
    stop: () =>
      (stopping ??= (async () => {
        try {
          await running.close();
        } finally {
          // Postgres goes last: until the app is closed, commands still record their outcome.
          await embeddedDb?.stop();
        }
      })()),
  };
}
