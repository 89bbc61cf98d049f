// First import: signals are caught from the first moment (see shutdown-signals.ts).
import { onShutdownSignal } from './shutdown-signals';
import 'reflect-metadata';
import { loadConfig, ConfigError, type AppConfig } from './config/app-config';
import { createRootLogger } from './common/logging';
import { isStartAborted, startApi, type RunningApi } from './bootstrap';
import { EmbeddedPostgresAccessError } from './database/postgres-user-access';

/** A shutdown that takes longer than this is cut short (exit 1), so a process manager is never left waiting. */
const SHUTDOWN_DEADLINE_MS = 20_000;

/**
 * The service's one shutdown path. SIGINT/SIGTERM are handled from the first line on, so a
 * signal during start-up aborts the start (stopping whatever it had started, Postgres last)
 * instead of killing the process under it; a signal afterwards closes the app (commands record
 * their outcome, the broker closes) and then stops the embedded Postgres. Either way exit 0.
 * A second signal, or the deadline, ends the process at once with exit 1.
 */
async function main(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const logger = createRootLogger(config.logLevel);
  const aborter = new AbortController();
  let api: RunningApi | undefined;
  let stopping = false;

  const exit: (code: number) => never = (code) => {
    logger.flush();
    process.exit(code);
  };
  const stopRunning = (running: RunningApi): void => {
    running.stop().then(
      () => {
        logger.info('shut down cleanly');
        exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without a clean shutdown');
      exit(1);
    }
    stopping = true;
    logger.info({ signal, phase: api ? 'running' : 'starting' }, 'shutting down');
    setTimeout(() => {
      logger.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown did not finish in time');
      exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    if (api) stopRunning(api);
    else aborter.abort();
  };
  onShutdownSignal(onSignal);

  let running: RunningApi;
  try {
    running = await startApi(config, logger, aborter.signal);
    api = running;
  } catch (err) {
    if (isStartAborted(err)) {
      logger.info('start-up interrupted; everything it had started is stopped');
      exit(0);
    }
    if (err instanceof EmbeddedPostgresAccessError) {
      // What to do is the whole message: no stack.
      logger.fatal(err.message);
      exit(2);
    }
    logger.fatal({ err }, err instanceof Error ? err.message : 'start-up failed');
    exit(1);
  }
  // Tests and scripts that start the service on port 0 read the bound ports from this line.
  logger.info(
    {
      url: running.url,
      mqttUrl: withoutCredentials(running.mqttUrl),
      mqttClientId: running.config.mqttClientId,
    },
    'device VPN cloud API listening',
  );
  // A signal that came while the last start-up step finished.
  if (stopping) stopRunning(running);
}

function withoutCredentials(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString().replace(/\/$/, '');
}

void main();
