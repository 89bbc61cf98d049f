// Options of the VPN gateway process: argv, then env VPN_GATEWAY_*, then a JSON --config file.
import { ACCOUNT_NAME_PATTERN, CLIENT_ID_PATTERN } from '@app/protocol';
import { ConfigError, LOG_LEVELS, LogLevel, OptionDef, OptionSources, usage } from '@app/edge';

export { ConfigError } from '@app/edge';

export interface GatewayMqttConfig {
  brokerUrl: string;
  account: string;
  clientId: string;
  username: string | undefined;
  password: string | undefined;
  keepaliveSec: number;
  reconnectPeriodMs: number;
}

export interface GatewayWireguardConfig {
  interfaceName: string;
  /** Network namespace the interface lives in (`ip netns exec`); undefined = the gateway's own. */
  netns: string | undefined;
  listenPort: number;
  /** Holds the private key and peers.json. */
  stateDir: string;
  /** persistent_keepalive_interval given to a peer whose stored endpoint is used to resume it. */
  keepaliveSec: number;
}

export interface GatewayConfig {
  mqtt: GatewayMqttConfig;
  wireguard: GatewayWireguardConfig;
  statsIntervalMs: number;
  logLevel: LogLevel;
}

export const ENV_PREFIX = 'VPN_GATEWAY_';
export const DEFAULT_INTERFACE = 'vpngw0';
export const DEFAULT_STATE_DIR = '.vpn-gateway';

const BROKER_PATTERN = /^(mqtts?|wss?|tcp|ssl):\/\/[^\s]+$/;
/** Linux interface names: at most 15 bytes (IFNAMSIZ - 1), no `/`, `:` or blanks. */
const INTERFACE_PATTERN = /^[A-Za-z0-9_=+-][A-Za-z0-9_=+.-]{0,14}$/;
/** What `ip netns add` accepts as a name (a file under /run/netns). */
const NETNS_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;

const GATEWAY_OPTIONS: Readonly<Record<string, OptionDef>> = {
  broker: { type: 'string', help: 'broker URL, e.g. mqtt://127.0.0.1:1883 (required)' },
  account: { type: 'string', help: 'account name the gateway belongs to, the topic segment (required)' },
  'client-id': { type: 'string', help: "the gateway's client id, also its MQTT client id (required)" },
  username: { type: 'string', help: 'MQTT username' },
  password: { type: 'string', help: 'MQTT password (prefer the env var: argv is visible in ps)' },
  'listen-port': { type: 'string', help: 'WireGuard UDP port (required)' },
  interface: {
    type: 'string',
    help: `WireGuard interface name, max 15 chars (default ${DEFAULT_INTERFACE})`,
  },
  netns: { type: 'string', help: 'run the interface inside this network namespace' },
  'state-dir': {
    type: 'string',
    help: `private key and last known peer endpoints (default ./${DEFAULT_STATE_DIR})`,
  },
  keepalive: {
    type: 'string',
    help: 'persistent keepalive (s) for peers resumed from a stored endpoint (default 25)',
  },
  'mqtt-keepalive': { type: 'string', help: 'MQTT keepalive in seconds (default 30)' },
  'reconnect-period-ms': { type: 'string', help: 'delay between broker reconnect attempts (default 1000)' },
  'stats-interval-ms': {
    type: 'string',
    help: 'how often peer handshakes and traffic are read (default 10000)',
  },
  'log-level': { type: 'string', help: `${LOG_LEVELS.join('|')} (default info)` },
};

export function gatewayUsage(): string {
  return [
    'usage: vpn-gateway --broker URL --account NAME --client-id ID --listen-port PORT [--username U] [options]',
    '',
    'Options (argv > environment > config file):',
    usage(GATEWAY_OPTIONS, ENV_PREFIX),
  ].join('\n');
}

export function parseGatewayConfig(args: readonly string[], env: NodeJS.ProcessEnv): GatewayConfig {
  const src = new OptionSources(GATEWAY_OPTIONS, args, env, ENV_PREFIX);
  const clientId =
    src.matching('client-id', CLIENT_ID_PATTERN, 'a client id of 1-64 chars [A-Za-z0-9._-]') ??
    src.required('client-id');
  const brokerUrl =
    src.matching('broker', BROKER_PATTERN, 'an mqtt://, mqtts://, ws:// or wss:// URL') ??
    src.required('broker');
  const account =
    src.matching('account', ACCOUNT_NAME_PATTERN, 'an account name of [a-z0-9][a-z0-9-]{1,62}') ??
    src.required('account');
  const username = src.string('username');
  const password = src.string('password');
  if (password !== undefined && username === undefined) {
    throw new ConfigError(`--password needs --username (or ${src.envName('username')})`);
  }
  if (src.string('listen-port') === undefined) src.required('listen-port');
  return {
    mqtt: {
      brokerUrl,
      account,
      clientId,
      username,
      password,
      keepaliveSec: src.integer('mqtt-keepalive', 30, 5, 65_535),
      reconnectPeriodMs: src.integer('reconnect-period-ms', 1000, 100, 3_600_000),
    },
    wireguard: {
      interfaceName:
        src.matching('interface', INTERFACE_PATTERN, 'a Linux interface name of at most 15 chars') ??
        DEFAULT_INTERFACE,
      netns: src.matching('netns', NETNS_PATTERN, 'a network namespace name'),
      listenPort: src.integer('listen-port', 0, 1, 65_535),
      stateDir: src.string('state-dir', DEFAULT_STATE_DIR),
      keepaliveSec: src.integer('keepalive', 25, 1, 65_535),
    },
    statsIntervalMs: src.integer('stats-interval-ms', 10_000, 1000, 3_600_000),
    logLevel: src.oneOf('log-level', LOG_LEVELS, 'info'),
  };
}
