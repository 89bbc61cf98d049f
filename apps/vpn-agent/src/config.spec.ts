import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  AGENT_CONNECT_DELAY_MS,
  agentUsage,
  ConfigError,
  defaultInterfaceName,
  parseAgentConfig,
} from './config';
import { FLEET_CONNECT_DELAY_MS, fleetUsage, parseFleetConfig } from './simulate-config';

const required = ['--broker', 'mqtt://127.0.0.1:1883', '--account', 'acme', '--client-id', 'dev-1'];

function configFile(content: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), 'vpn-agent-config-')), 'agent.json');
  writeFileSync(path, JSON.stringify(content));
  return path;
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('parseAgentConfig', () => {
  it('should apply defaults when only the required options are given', () => {
    const config = parseAgentConfig(required, {});
    expect(config).toMatchObject({
      mqtt: {
        brokerUrl: 'mqtt://127.0.0.1:1883',
        account: 'acme',
        clientId: 'dev-1',
        username: undefined,
        password: undefined,
        keepaliveSec: 30,
        reconnectPeriodMs: 1000,
      },
      device: { displayName: 'dev-1', modelId: 'vpn-agent', serialNumber: 'dev-1' },
      driver: 'simulated',
      simulated: { connectDelayMs: 200, disconnectDelayMs: 0, failMode: 'none', announceKey: false },
      wireguard: {
        stateDir: join('.vpn-agent', 'dev-1'),
        interfaceName: 'wg-dev-1',
        handshakeTimeoutMs: 10000,
      },
      logLevel: 'info',
    });
  });

  it('should read every option from VPN_AGENT_* environment variables', () => {
    const config = parseAgentConfig([], {
      VPN_AGENT_BROKER: 'mqtts://broker.example:8883',
      VPN_AGENT_ACCOUNT: 'acme',
      VPN_AGENT_CLIENT_ID: 'gw.7',
      VPN_AGENT_USERNAME: 'u',
      VPN_AGENT_PASSWORD: 'p',
      VPN_AGENT_DRIVER: 'wireguard',
      VPN_AGENT_CONNECT_DELAY_MS: '5',
      VPN_AGENT_FAIL_MODE: 'timeout',
      VPN_AGENT_LOG_LEVEL: 'debug',
    });
    expect(config.mqtt).toMatchObject({
      brokerUrl: 'mqtts://broker.example:8883',
      clientId: 'gw.7',
      username: 'u',
    });
    expect(config.mqtt.password).toBe('p');
    expect(config.driver).toBe('wireguard');
    expect(config.simulated).toMatchObject({ connectDelayMs: 5, failMode: 'timeout' });
    expect(config.logLevel).toBe('debug');
  });

  it('should prefer argv over env over the config file', () => {
    const file = configFile({
      broker: 'mqtt://file:1883',
      account: 'from-file',
      clientId: 'file-id',
      connectDelayMs: 7,
    });
    const config = parseAgentConfig(['--config', file, '--client-id', 'argv-id'], {
      VPN_AGENT_ACCOUNT: 'from-env',
      VPN_AGENT_CLIENT_ID: 'env-id',
    });
    expect(config.mqtt).toMatchObject({
      brokerUrl: 'mqtt://file:1883',
      account: 'from-env',
      clientId: 'argv-id',
    });
    expect(config.simulated.connectDelayMs).toBe(7);
  });

  it('should take the config file path from VPN_AGENT_CONFIG', () => {
    const file = configFile({ broker: 'mqtt://file:1883', account: 'acme', clientId: 'x1' });
    expect(parseAgentConfig([], { VPN_AGENT_CONFIG: file }).mqtt.clientId).toBe('x1');
  });

  it('should treat --fail-connect as --fail-mode connect', () => {
    expect(parseAgentConfig([...required, '--fail-connect'], {}).simulated.failMode).toBe('connect');
    expect(parseAgentConfig(required, { VPN_AGENT_FAIL_CONNECT: 'true' }).simulated.failMode).toBe('connect');
  });

  it.each([
    [['--broker', 'mqtt://h:1', '--account', 'acme'], '--client-id is required'],
    [['--account', 'acme', '--client-id', 'd'], '--broker is required'],
    [[...required, '--broker', 'http://x'], '--broker must be an mqtt://'],
    [[...required, '--account', 'Bad_Name'], '--account must be an account name'],
    [[...required, '--client-id', 'a/b'], '--client-id must be a client id'],
    [[...required, '--driver', 'openvpn'], '--driver must be one of simulated, wireguard, got "openvpn"'],
    [[...required, '--connect-delay-ms=-1'], '--connect-delay-ms must be an integer'],
    [[...required, '--connect-delay-ms', '1.5'], '--connect-delay-ms must be an integer'],
    [
      [...required, '--fail-mode', 'sometimes'],
      '--fail-mode must be one of none, connect, disconnect, timeout',
    ],
    [[...required, '--fail-connect', '--fail-mode', 'timeout'], '--fail-connect contradicts'],
    [[...required, '--log-level', 'loud'], '--log-level must be one of'],
    [[...required, '--interface', 'much-too-long-name0'], '--interface must be a Linux interface name'],
    [[...required, '--password', 'p'], '--password needs --username'],
    [[...required, '--bogus'], "Unknown option '--bogus'"],
  ])('should reject %j naming the option', (args, message) => {
    expect(errorOf(() => parseAgentConfig(args, {})).message).toContain(message);
  });

  it('should name the environment variable when its value is bad', () => {
    expect(errorOf(() => parseAgentConfig(required, { VPN_AGENT_KEEPALIVE: 'often' })).message).toContain(
      'env VPN_AGENT_KEEPALIVE must be an integer',
    );
  });

  it('should reject unknown keys and bad JSON in the config file', () => {
    expect(errorOf(() => parseAgentConfig(['--config', configFile({ brokr: 'x' })], {})).message).toContain(
      'unknown key(s) brokr',
    );
    expect(errorOf(() => parseAgentConfig(['--config', configFile([1])], {})).message).toContain(
      'JSON object',
    );
    expect(errorOf(() => parseAgentConfig(['--config', '/nonexistent/agent.json'], {})).message).toContain(
      '--config /nonexistent/agent.json',
    );
  });
});

describe('defaultInterfaceName', () => {
  it('should keep short client ids readable and fit long ones into 15 characters', () => {
    expect(defaultInterfaceName('gw-7')).toBe('wg-gw-7');
    const a = defaultInterfaceName('factory-gateway-0001');
    const b = defaultInterfaceName('factory-gateway-0002');
    expect(a.length).toBeLessThanOrEqual(15);
    expect(a).not.toBe(b);
    expect(defaultInterfaceName('a.b')).toMatch(/^wg-ab[0-9a-f]{8}$/);
  });
});

describe('parseFleetConfig', () => {
  const fleet = ['--broker', 'mqtt://127.0.0.1:1883', '--account', 'acme', '--count', '10'];

  it('should default to anonymous devices, batches of 200 and no connect delay', () => {
    const config = parseFleetConfig(fleet, {});
    expect(config).toMatchObject({
      count: 10,
      credentials: { kind: 'anonymous' },
      batchSize: 200,
      simulated: { connectDelayMs: 0, failMode: 'none' },
      agentLogLevel: 'warn',
    });
    expect(config.clientIdPrefix).toMatch(/^sim-[0-9a-f]{6}-$/);
  });

  it('should read a credentials file or API provisioning options', () => {
    expect(parseFleetConfig([...fleet, '--credentials', 'c.jsonl'], {}).credentials).toEqual({
      kind: 'file',
      path: 'c.jsonl',
    });
    expect(
      parseFleetConfig([...fleet, '--api', 'http://127.0.0.1:3000'], { VPN_AGENT_SIM_TOKEN: 't' })
        .credentials,
    ).toMatchObject({ kind: 'api', apiUrl: 'http://127.0.0.1:3000', token: 't', concurrency: 16 });
  });

  it('should reject a missing count, --api without a token, and both sources at once', () => {
    expect(errorOf(() => parseFleetConfig(fleet.slice(0, 4), {})).message).toContain('--count is required');
    expect(errorOf(() => parseFleetConfig([...fleet, '--api', 'http://x'], {})).message).toContain(
      '--api needs --token or --api-key',
    );
    expect(
      errorOf(() =>
        parseFleetConfig([...fleet, '--api', 'http://x', '--token', 't', '--credentials', 'f'], {}),
      ).message,
    ).toContain('exclude each other');
  });
});

describe('--connect-delay-ms in the help texts', () => {
  const helpDefault = (text: string): string | undefined =>
    /--connect-delay-ms\s.*\(default (\d+)\)/.exec(text)?.[1];

  it('should state the default the agent really uses', () => {
    expect(helpDefault(agentUsage())).toBe(String(AGENT_CONNECT_DELAY_MS));
    expect(parseAgentConfig(required, {}).simulated.connectDelayMs).toBe(AGENT_CONNECT_DELAY_MS);
  });

  it("should state the default simulate really uses (0, not the agent's)", () => {
    expect(helpDefault(fleetUsage())).toBe('0');
    const fleet = parseFleetConfig(
      ['--broker', 'mqtt://127.0.0.1:1883', '--account', 'root', '--count', '1'],
      {},
    );
    expect(fleet.simulated.connectDelayMs).toBe(FLEET_CONNECT_DELAY_MS);
    expect(FLEET_CONNECT_DELAY_MS).toBe(0);
  });
});
