// Entry point: `vpn-client --api URL [options]` serves the VPN Client API on loopback until
// SIGINT/SIGTERM, then tears its tunnel down and exits.
import { ConfigError, clientUsage, parseClientConfig } from './config';
import { RunningClient, startVpnClient } from './client';
import { Logger, createLogger, errorFields } from '@app/edge';

const EXIT_CONFIG = 2;

async function run(args: string[]): Promise<void> {
  const config = parseClientConfig(args, process.env);
  const logger = createLogger(config.logLevel, {}, 'vpn-client');
  let client: RunningClient;
  try {
    client = await startVpnClient(config, logger);
  } catch (err) {
    logger.fatal({ ...errorFields(err) }, 'vpn-client could not start');
    process.exit(1);
  }
  onShutdown(logger, () => client.close());
}

/** First SIGINT/SIGTERM: tear the tunnel down (and end the session), then exit 0. A second one exits at once. */
function onShutdown(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal, exiting without a clean stop');
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ ...errorFields(err) }, 'unclean shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

function main(argv: string[]): void {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${clientUsage()}\n`);
    return;
  }
  run(argv).catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`vpn-client: ${err.message}\nTry 'vpn-client --help'.\n`);
      process.exit(EXIT_CONFIG);
    }
    process.stderr.write(`vpn-client: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

main(process.argv.slice(2));
