import { createHash } from 'node:crypto';
import { join } from 'node:path';

import { ACCOUNT_NAME_PATTERN, CLIENT_ID_PATTERN } from '@app/protocol';
import { ConfigError, LOG_LEVELS, LogLevel, OptionDef, OptionSources, usage } from '@app/edge';

export { ConfigError } from '@app/edge';

export const DRIVERS = ['simulated', 'wireguard'] as const;
export type DriverName = (typeof DRIVERS)[number];

/** How the simulated driver misbehaves; `timeout` never answers a connect, so the cloud can test its 504. */
export const FAIL_MODES = ['none', 'connect', 'disconnect', 'timeout'] as const;
export type FailMode = (typeof FAIL_MODES)[number];

export interface SimulatedDriverConfig {
  connectDelayMs: number;
  disconnectDelayMs: number;
  failMode: FailMode;
  /**
   * Announce a fake (well-formed) WireGuard key in BIRTH. Off by default: a keyless device needs
   * no gateway, which is what load tests want; on, the cloud treats the device as one with a
   * WireGuard key (gateway peer, NO_GATEWAY), while its "tunnel" still carries nothing.
   */
  announceKey: boolean;
}

export interface WireguardDriverConfig {
  stateDir: string;
  interfaceName: string;
  /** Network namespace to run the tunnel in (`ip netns exec`); undefined = the agent's own. */
  netns: string | undefined;
  handshakeTimeoutMs: number;
}

export interface DeviceIdentity {
  displayName: string;
  modelId: string;
  serialNumber: string;
}

export interface MqttLinkConfig {
  brokerUrl: string;
  account: string;
  clientId: string;
  username: string | undefined;
  password: string | undefined;
  keepaliveSec: number;
  reconnectPeriodMs: number;
}

export interface AgentConfig {
  mqtt: MqttLinkConfig;
  device: DeviceIdentity;
  driver: DriverName;
  simulated: SimulatedDriverConfig;
  wireguard: WireguardDriverConfig;
  logLevel: LogLevel;
}

export const ENV_PREFIX = 'VPN_AGENT_';

const BROKER_PATTERN = /^(mqtts?|wss?|tcp|ssl):\/\/[^\s]+$/;
/** Linux interface names: at most 15 bytes (IFNAMSIZ - 1), no `/`, `:` or blanks. */
const INTERFACE_PATTERN = /^[A-Za-z0-9_=+-][A-Za-z0-9_=+.-]{0,14}$/;

/** Broker options shared by one agent and the fleet simulator. */
export const LINK_OPTIONS: Readonly<Record<string, OptionDef>> = {
  broker: { type: 'string', help: 'broker URL, e.g. mqtt://127.0.0.1:1883 (required)' },
  account: { type: 'string', help: 'account name, the topic segment (required)' },
  keepalive: { type: 'string', help: 'MQTT keepalive in seconds (default 30)' },
  'reconnect-period-ms': { type: 'string', help: 'delay between reconnect attempts (default 1000)' },
};

/** Default of --connect-delay-ms for one agent (a visible delay, as a real tunnel has). */
export const AGENT_CONNECT_DELAY_MS = 200;

/** The simulated driver's options; the help states `defaultConnectDelayMs`, the default the caller parses with. */
export const simulatedDriverOptions = (
  defaultConnectDelayMs: number,
): Readonly<Record<string, OptionDef>> => ({
  'connect-delay-ms': {
    type: 'string',
    help: `simulated driver: time to bring the tunnel up (default ${defaultConnectDelayMs})`,
  },
  'disconnect-delay-ms': { type: 'string', help: 'simulated driver: time to take it down (default 0)' },
  'fail-mode': { type: 'string', help: `simulated driver: ${FAIL_MODES.join('|')} (default none)` },
  'fail-connect': { type: 'boolean', help: 'simulated driver: same as --fail-mode connect' },
  'announce-key': {
    type: 'boolean',
    help: 'simulated driver: announce a fake WireGuard key, so the cloud puts the device on a gateway',
  },
});

export const LOG_OPTIONS: Readonly<Record<string, OptionDef>> = {
  'log-level': { type: 'string', help: `${LOG_LEVELS.join('|')} (default info)` },
};

const AGENT_OPTIONS: Readonly<Record<string, OptionDef>> = {
  ...LINK_OPTIONS,
  'client-id': { type: 'string', help: "the device's client id, also its MQTT client id (required)" },
  username: { type: 'string', help: 'device MQTT username' },
  password: { type: 'string', help: 'device MQTT password (prefer the env var: argv is visible in ps)' },
  driver: { type: 'string', help: `${DRIVERS.join('|')} (default simulated)` },
  ...simulatedDriverOptions(AGENT_CONNECT_DELAY_MS),
  'state-dir': {
    type: 'string',
    help: 'wireguard: where the private key lives (default ./.vpn-agent/<client-id>)',
  },
  interface: {
    type: 'string',
    help: 'wireguard: interface name, max 15 chars (default derived from client id)',
  },
  netns: { type: 'string', help: 'wireguard: run the tunnel inside this network namespace' },
  'handshake-timeout-ms': {
    type: 'string',
    help: 'wireguard: wait this long for the first handshake (default 10000, 0 = do not wait)',
  },
  'display-name': { type: 'string', help: 'BIRTH display_name (default: client id)' },
  'model-id': { type: 'string', help: 'BIRTH model_id (default vpn-agent)' },
  'serial-number': { type: 'string', help: 'BIRTH serial_number (default: client id)' },
  ...LOG_OPTIONS,
};

export function agentUsage(): string {
  return [
    'usage: vpn-agent --broker URL --account NAME --client-id ID [--username U --password P] [--driver simulated|wireguard] [options]',
    '       vpn-agent simulate --help',
    '',
    'Options (argv > environment > config file):',
    usage(AGENT_OPTIONS, ENV_PREFIX),
  ].join('\n');
}

export function parseAgentConfig(args: readonly string[], env: NodeJS.ProcessEnv): AgentConfig {
  const src = new OptionSources(AGENT_OPTIONS, args, env, ENV_PREFIX);
  const id =
    src.matching('client-id', CLIENT_ID_PATTERN, 'a client id of 1-64 chars [A-Za-z0-9._-]') ??
    src.required('client-id');
  const username = src.string('username');
  const password = src.string('password');
  if (password !== undefined && username === undefined) {
    throw new ConfigError(`--password needs --username (or ${src.envName('username')})`);
  }
  return {
    mqtt: { ...parseMqttLink(src), clientId: id, username, password },
    device: {
      displayName: src.string('display-name', id),
      modelId: src.string('model-id', 'vpn-agent'),
      serialNumber: src.string('serial-number', id),
    },
    driver: src.oneOf('driver', DRIVERS, 'simulated'),
    simulated: parseSimulatedDriver(src, AGENT_CONNECT_DELAY_MS),
    wireguard: {
      stateDir: src.string('state-dir', join('.vpn-agent', id)),
      interfaceName:
        src.matching('interface', INTERFACE_PATTERN, 'a Linux interface name of at most 15 chars') ??
        defaultInterfaceName(id),
      netns: src.string('netns'),
      handshakeTimeoutMs: src.integer('handshake-timeout-ms', 10_000, 0, 600_000),
    },
    logLevel: parseLogLevel(src),
  };
}

/** The broker options shared by one agent and the fleet simulator; identity and credentials are per device. */
export function parseMqttLink(
  src: OptionSources,
): Omit<MqttLinkConfig, 'clientId' | 'username' | 'password'> {
  const brokerUrl = src.matching('broker', BROKER_PATTERN, 'an mqtt://, mqtts://, ws:// or wss:// URL');
  const account = src.matching('account', ACCOUNT_NAME_PATTERN, 'an account name of [a-z0-9][a-z0-9-]{1,62}');
  return {
    brokerUrl: brokerUrl ?? src.required('broker'),
    account: account ?? src.required('account'),
    keepaliveSec: src.integer('keepalive', 30, 5, 65_535),
    reconnectPeriodMs: src.integer('reconnect-period-ms', 1000, 100, 3_600_000),
  };
}

export function parseSimulatedDriver(
  src: OptionSources,
  defaultConnectDelayMs: number,
): SimulatedDriverConfig {
  const failConnect = src.boolean('fail-connect', false);
  const failMode = src.oneOf('fail-mode', FAIL_MODES, failConnect ? 'connect' : 'none');
  if (failConnect && failMode !== 'connect') {
    throw new ConfigError(`--fail-connect contradicts --fail-mode ${failMode}`);
  }
  return {
    connectDelayMs: src.integer('connect-delay-ms', defaultConnectDelayMs, 0, 3_600_000),
    disconnectDelayMs: src.integer('disconnect-delay-ms', 0, 0, 3_600_000),
    failMode,
    announceKey: src.boolean('announce-key', false),
  };
}

export function parseLogLevel(src: OptionSources, fallback: LogLevel = 'info'): LogLevel {
  return src.oneOf('log-level', LOG_LEVELS, fallback);
}

/**
 * `wg-<client id>` when that fits in 15 chars, else a prefix plus a hash so that two devices whose
 * ids share a long prefix still get different interfaces on one host.
 */
export function defaultInterfaceName(clientId: string): string {
  const safe = clientId.replace(/[^A-Za-z0-9_-]/g, '');
  const plain = `wg-${safe}`;
  if (plain.length <= 15 && safe === clientId) return plain;
  const hash = createHash('sha256').update(clientId).digest('hex').slice(0, 8);
  return `wg-${safe.slice(0, 4)}${hash}`;
}
