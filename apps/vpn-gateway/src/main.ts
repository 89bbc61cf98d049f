// Entry point: `vpn-gateway [options]` runs one VPN gateway (see config.ts for the options).
import { ConfigError, gatewayUsage, parseGatewayConfig } from './config';
import { Gateway } from './gateway';
import { Logger, createLogger, errorFields } from '@app/edge';

const EXIT_CONFIG = 2;

async function run(args: string[]): Promise<void> {
  const config = parseGatewayConfig(args, process.env);
  const logger = createLogger(config.logLevel, { clientId: config.mqtt.clientId }, 'vpn-gateway');
  const created = Gateway.create(config, logger);
  let stopped = false;
  // Installed before the interface exists, so a signal during set-up still removes what was set up.
  onShutdown(logger, async () => {
    stopped = true;
    const gateway = await created.catch(() => undefined);
    await gateway?.stop();
  });
  let gateway: Gateway;
  try {
    gateway = await created;
  } catch (err) {
    logger.fatal({ ...errorFields(err) }, 'gateway could not start');
    process.exit(1);
  }
  if (!stopped) gateway.start();
}

/** First SIGINT/SIGTERM: clean stop (DC, interface removed), then exit 0. A second one exits at once. */
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
    process.stdout.write(`${gatewayUsage()}\n`);
    return;
  }
  run(argv).catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`vpn-gateway: ${err.message}\nTry 'vpn-gateway --help'.\n`);
      process.exit(EXIT_CONFIG);
    }
    process.stderr.write(`vpn-gateway: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

main(process.argv.slice(2));
