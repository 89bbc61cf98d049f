import 'reflect-metadata';
import { loadConfig, ConfigError, type AppConfig } from './config/app-config';
import { createRootLogger } from './common/logging';
import { startApi } from './bootstrap';

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
  let api: Awaited<ReturnType<typeof startApi>>;
  try {
    api = await startApi(config, logger);
  } catch (err) {
    logger.fatal({ err }, err instanceof Error ? err.message : 'start-up failed');
    process.exit(1);
  }
  logger.info({ url: api.url, mqttClientId: api.config.mqttClientId }, 'device VPN cloud API listening');
  let signals = 0;
  const shutdown = (signal: string): void => {
    if (++signals > 1) return;
    logger.info({ signal }, 'shutting down');
    api.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

void main();
