// Entry point: `vpn-agent [options]` runs one device agent; `vpn-agent simulate [options]` a fleet.
import { agentUsage, ConfigError, parseAgentConfig } from './config';
import { DeviceAgent } from './device-agent';
import { createDriver } from './drivers/create-driver';
import { FleetSimulator } from './simulate';
import { fleetUsage, parseFleetConfig } from './simulate-config';
import { Logger, createLogger, errorFields } from '@app/edge';

const EXIT_CONFIG = 2;

async function runAgent(args: string[]): Promise<void> {
  const config = parseAgentConfig(args, process.env);
  const logger = createLogger(config.logLevel, { clientId: config.mqtt.clientId });
  let driver;
  try {
    driver = await createDriver(config, logger);
  } catch (err) {
    logger.fatal({ driver: config.driver, ...errorFields(err) }, 'VPN driver could not start');
    process.exit(1);
  }
  const agent = new DeviceAgent({ mqtt: config.mqtt, device: config.device, driver, logger });
  onShutdown(logger, () => agent.stop());
  agent.start();
}

async function runFleet(args: string[]): Promise<void> {
  const config = parseFleetConfig(args, process.env);
  const logger = createLogger(config.logLevel, { mode: 'simulate' });
  const fleet = new FleetSimulator(config, logger);
  onShutdown(logger, () => fleet.stop());
  const summary = await fleet.run();
  // The summary is the run's result, printed whatever --log-level says.
  createLogger('info', { mode: 'simulate' }).info(
    summary,
    summary.notConnected === 0 ? 'fleet ready' : 'fleet partly ready',
  );
  if (config.runForMs > 0) {
    setTimeout(() => process.kill(process.pid, 'SIGTERM'), config.runForMs);
  }
}

/** First SIGINT/SIGTERM: clean stop (DC instead of LWT), then exit 0. A second one exits at once. */
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
  const simulate = argv[0] === 'simulate';
  const args = simulate ? argv.slice(1) : argv;
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(`${simulate ? fleetUsage() : agentUsage()}\n`);
    return;
  }
  (simulate ? runFleet(args) : runAgent(args)).catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(
        `vpn-agent: ${err.message}\nTry 'vpn-agent ${simulate ? 'simulate ' : ''}--help'.\n`,
      );
      process.exit(EXIT_CONFIG);
    }
    process.stderr.write(`vpn-agent: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}

main(process.argv.slice(2));
