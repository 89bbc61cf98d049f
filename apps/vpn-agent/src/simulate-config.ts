import { randomBytes } from 'node:crypto';

import {
  ConfigError,
  ENV_PREFIX,
  LINK_OPTIONS,
  LOG_OPTIONS,
  MqttLinkConfig,
  parseLogLevel,
  parseMqttLink,
  parseSimulatedDriver,
  simulatedDriverOptions,
  SimulatedDriverConfig,
} from './config';
import { LOG_LEVELS, LogLevel, OptionDef, OptionSources, usage } from '@app/edge';

/** Where the simulated devices' MQTT identities come from. */
export type CredentialSource =
  | { kind: 'file'; path: string }
  | { kind: 'api'; apiUrl: string; token?: string; apiKey?: string; saveTo?: string; concurrency: number }
  | { kind: 'anonymous' };

export interface FleetConfig {
  link: Omit<MqttLinkConfig, 'clientId' | 'username' | 'password'>;
  count: number;
  credentials: CredentialSource;
  clientIdPrefix: string;
  /** Devices connecting at once; the next batch starts when this one is up (or batchTimeoutMs passed). */
  batchSize: number;
  batchTimeoutMs: number;
  /** After the last batch, how long to wait for stragglers before printing the summary. */
  readyTimeoutMs: number;
  /** Spread of reconnect delays, so that a broker restart does not see all devices in the same second. */
  reconnectJitterMs: number;
  /** 0 = run until SIGINT/SIGTERM. */
  runForMs: number;
  simulated: SimulatedDriverConfig;
  logLevel: LogLevel;
  agentLogLevel: LogLevel;
}

/** Default of --connect-delay-ms in the fleet simulator: load tests want no artificial delay. */
export const FLEET_CONNECT_DELAY_MS = 0;

const FLEET_OPTIONS: Readonly<Record<string, OptionDef>> = {
  ...LINK_OPTIONS,
  count: { type: 'string', help: 'number of simulated devices (required)' },
  credentials: { type: 'string', help: 'JSON array or JSON lines of {clientId, username, password}' },
  api: { type: 'string', help: 'REST API base URL: provision --count devices through it instead' },
  token: { type: 'string', help: 'with --api: access token (tokenId)' },
  'api-key': { type: 'string', help: 'with --api: API key, exchanged for a token' },
  'save-credentials': {
    type: 'string',
    help: 'with --api: write the provisioned credentials here (JSON lines)',
  },
  'provision-concurrency': { type: 'string', help: 'with --api: parallel API calls (default 16)' },
  'client-id-prefix': {
    type: 'string',
    help: 'client ids for --api or anonymous mode (default sim-<random>-)',
  },
  'batch-size': { type: 'string', help: 'devices connecting at once (default 200)' },
  'batch-timeout-ms': {
    type: 'string',
    help: 'max wait for one batch before starting the next (default 30000)',
  },
  'ready-timeout-ms': {
    type: 'string',
    help: 'max wait for all devices after the last batch (default 60000)',
  },
  'reconnect-jitter-ms': { type: 'string', help: 'random extra reconnect delay per device (default 5000)' },
  'run-for-ms': { type: 'string', help: 'stop cleanly after this long (default 0 = until a signal)' },
  ...simulatedDriverOptions(FLEET_CONNECT_DELAY_MS),
  ...LOG_OPTIONS,
  'agent-log-level': { type: 'string', help: `per-device logs: ${LOG_LEVELS.join('|')} (default warn)` },
};

export function fleetUsage(): string {
  return [
    'usage: vpn-agent simulate --broker URL --account NAME --count N',
    '         (--credentials FILE | --api URL (--token T | --api-key K) [--save-credentials FILE] | neither: anonymous)',
    '',
    `Options (argv > environment > config file; environment names are ${ENV_PREFIX}SIM_<OPTION>):`,
    usage(FLEET_OPTIONS, `${ENV_PREFIX}SIM_`),
  ].join('\n');
}

export function parseFleetConfig(args: readonly string[], env: NodeJS.ProcessEnv): FleetConfig {
  const src = new OptionSources(FLEET_OPTIONS, args, env, `${ENV_PREFIX}SIM_`);
  const count = src.integer('count', 0, 1, 1_000_000);
  if (count === 0) src.required('count');
  const file = src.string('credentials');
  const apiUrl = src.matching('api', /^https?:\/\/\S+$/, 'an http:// or https:// URL');
  if (file !== undefined && apiUrl !== undefined)
    throw new ConfigError('--credentials and --api exclude each other');
  const token = src.string('token');
  const apiKey = src.string('api-key');
  if (apiUrl !== undefined && token === undefined && apiKey === undefined) {
    throw new ConfigError('--api needs --token or --api-key');
  }
  let credentials: CredentialSource = { kind: 'anonymous' };
  if (file !== undefined) credentials = { kind: 'file', path: file };
  if (apiUrl !== undefined) {
    credentials = {
      kind: 'api',
      apiUrl,
      token,
      apiKey,
      saveTo: src.string('save-credentials'),
      concurrency: src.integer('provision-concurrency', 16, 1, 1000),
    };
  }
  return {
    link: parseMqttLink(src),
    count,
    credentials,
    clientIdPrefix:
      src.matching('client-id-prefix', /^[A-Za-z0-9._-]{1,40}$/, 'a client id prefix of [A-Za-z0-9._-]') ??
      `sim-${randomBytes(3).toString('hex')}-`,
    batchSize: src.integer('batch-size', 200, 1, 100_000),
    batchTimeoutMs: src.integer('batch-timeout-ms', 30_000, 100, 3_600_000),
    readyTimeoutMs: src.integer('ready-timeout-ms', 60_000, 0, 3_600_000),
    reconnectJitterMs: src.integer('reconnect-jitter-ms', 5000, 0, 3_600_000),
    runForMs: src.integer('run-for-ms', 0, 0, 365 * 24 * 3_600_000),
    simulated: parseSimulatedDriver(src, FLEET_CONNECT_DELAY_MS),
    logLevel: parseLogLevel(src),
    agentLogLevel: src.oneOf('agent-log-level', LOG_LEVELS, 'warn'),
  };
}
