// Gateway options: argv over env VPN_GATEWAY_*, defaults, and errors that name the option.
import { ConfigError, parseGatewayConfig } from './config';

const REQUIRED = [
  '--broker',
  'mqtt://127.0.0.1:1883',
  '--account',
  'acme',
  '--client-id',
  'gw-1',
  '--listen-port',
  '51820',
];

describe('parseGatewayConfig', () => {
  it('should apply the defaults', () => {
    expect(parseGatewayConfig(REQUIRED, {})).toEqual({
      mqtt: {
        brokerUrl: 'mqtt://127.0.0.1:1883',
        account: 'acme',
        clientId: 'gw-1',
        username: undefined,
        password: undefined,
        keepaliveSec: 30,
        reconnectPeriodMs: 1000,
      },
      wireguard: {
        interfaceName: 'vpngw0',
        netns: undefined,
        listenPort: 51820,
        stateDir: '.vpn-gateway',
        keepaliveSec: 25,
      },
      statsIntervalMs: 10_000,
      logLevel: 'info',
    });
  });

  it('should read every option from the environment too, argv first', () => {
    const config = parseGatewayConfig(['--broker', 'mqtt://a:1', '--keepalive', '10'], {
      VPN_GATEWAY_BROKER: 'mqtt://ignored:1',
      VPN_GATEWAY_ACCOUNT: 'acme',
      VPN_GATEWAY_CLIENT_ID: 'gw-2',
      VPN_GATEWAY_LISTEN_PORT: '40000',
      VPN_GATEWAY_USERNAME: 'gw-2',
      VPN_GATEWAY_PASSWORD: 'secret',
      VPN_GATEWAY_INTERFACE: 'gw7',
      VPN_GATEWAY_NETNS: 'ns-gw',
      VPN_GATEWAY_STATE_DIR: '/var/lib/gw',
      VPN_GATEWAY_KEEPALIVE: '99',
      VPN_GATEWAY_STATS_INTERVAL_MS: '2000',
    });
    expect(config.mqtt).toMatchObject({ brokerUrl: 'mqtt://a:1', clientId: 'gw-2', password: 'secret' });
    expect(config.wireguard).toEqual({
      interfaceName: 'gw7',
      netns: 'ns-gw',
      listenPort: 40000,
      stateDir: '/var/lib/gw',
      keepaliveSec: 10,
    });
    expect(config.statsIntervalMs).toBe(2000);
  });

  it.each([
    [['--broker', 'mqtt://a:1', '--account', 'acme', '--client-id', 'gw'], '--listen-port is required'],
    [[...REQUIRED, '--listen-port', '0'], '--listen-port must be an integer from 1 to 65535'],
    [[...REQUIRED, '--interface', 'much-too-long-name'], '--interface must be a Linux interface name'],
    [[...REQUIRED, '--account', 'ACME'], '--account must be an account name'],
    [[...REQUIRED, '--password', 'p'], '--password needs --username'],
    [[...REQUIRED, '--log-level', 'loud'], '--log-level must be one of'],
    [[...REQUIRED, '--netns', '../x'], '--netns must be a network namespace name'],
    [[...REQUIRED, '--bogus'], "Unknown option '--bogus'"],
  ])('should refuse %j naming the option', (args, message) => {
    expect(() => parseGatewayConfig(args, {})).toThrow(ConfigError);
    expect(() => parseGatewayConfig(args, {})).toThrow(message);
  });
});
