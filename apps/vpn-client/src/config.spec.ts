// CLI/env parsing of the VPN client: defaults, repeatable --allow-origin, loopback-only --listen.
import { ConfigError, parseClientConfig, parseListen, parseOrigin } from './config';

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('parseClientConfig', () => {
  it('should apply the defaults when only --api is given', () => {
    expect(parseClientConfig(['--api', 'https://cloud.example.com/'], {})).toEqual({
      apiUrl: 'https://cloud.example.com',
      listen: { host: '127.0.0.1', port: 9250 },
      stateDir: '.vpn-client',
      interfaceName: 'vpncl0',
      netns: undefined,
      tls: undefined,
      allowedOrigins: [],
      logLevel: 'info',
    });
  });

  it('should collect every --allow-origin, in both spellings', () => {
    const config = parseClientConfig(
      [
        '--api',
        'http://127.0.0.1:3000',
        '--allow-origin',
        'https://portal.example.com',
        '--allow-origin=http://localhost:8080',
        '--listen',
        '127.0.0.1:0',
      ],
      {},
    );
    expect(config.allowedOrigins).toEqual(['https://portal.example.com', 'http://localhost:8080']);
    expect(config.listen).toEqual({ host: '127.0.0.1', port: 0 });
  });

  it('should read VPN_CLIENT_* variables, origins comma-separated', () => {
    const config = parseClientConfig([], {
      VPN_CLIENT_API: 'https://cloud.example.com/base',
      VPN_CLIENT_LISTEN: '[::1]:9300',
      VPN_CLIENT_STATE_DIR: '/var/lib/vpn-client',
      VPN_CLIENT_INTERFACE: 'eng0',
      VPN_CLIENT_NETNS: 'engineer',
      VPN_CLIENT_TLS_CERT: '/etc/c.pem',
      VPN_CLIENT_TLS_KEY: '/etc/k.pem',
      VPN_CLIENT_ALLOW_ORIGIN: 'https://a.example, https://b.example',
      VPN_CLIENT_LOG_LEVEL: 'debug',
    });
    expect(config).toEqual({
      apiUrl: 'https://cloud.example.com/base',
      listen: { host: '::1', port: 9300 },
      stateDir: '/var/lib/vpn-client',
      interfaceName: 'eng0',
      netns: 'engineer',
      tls: { certFile: '/etc/c.pem', keyFile: '/etc/k.pem' },
      allowedOrigins: ['https://a.example', 'https://b.example'],
      logLevel: 'debug',
    });
  });

  it('should refuse what would make the client unsafe or unusable, naming the option', () => {
    expect(errorOf(() => parseClientConfig([], {})).message).toMatch(/--api is required/);
    expect(errorOf(() => parseClientConfig(['--api', 'ftp://x'], {})).message).toMatch(/--api/);
    expect(errorOf(() => parseClientConfig(['--api', 'https://u:p@x'], {})).message).toMatch(/credentials/);
    expect(
      errorOf(() => parseClientConfig(['--api', 'https://x', '--listen', '0.0.0.0:9250'], {})).message,
    ).toMatch(/loopback/);
    expect(
      errorOf(() => parseClientConfig(['--api', 'https://x', '--tls-cert', 'c.pem'], {})).message,
    ).toMatch(/--tls-key/);
    expect(
      errorOf(() => parseClientConfig(['--api', 'https://x', '--interface', 'much-too-long-name'], {}))
        .message,
    ).toMatch(/--interface/);
    expect(errorOf(() => parseClientConfig(['--api', 'https://x', '--allow-origin'], {})).message).toMatch(
      /needs a value/,
    );
    expect(errorOf(() => parseClientConfig(['--api', 'https://x', '--bogus'], {})).message).toMatch(/bogus/);
  });
});

describe('parseListen', () => {
  it('should accept loopback addresses only', () => {
    expect(parseListen('localhost:9250')).toEqual({ host: 'localhost', port: 9250 });
    expect(parseListen('127.0.0.2:1')).toEqual({ host: '127.0.0.2', port: 1 });
    expect(() => parseListen('192.168.1.10:9250')).toThrow(ConfigError);
    expect(() => parseListen('[::]:9250')).toThrow(ConfigError);
    expect(() => parseListen('127.0.0.1')).toThrow(ConfigError);
    expect(() => parseListen('127.0.0.1:70000')).toThrow(ConfigError);
  });
});

describe('parseOrigin', () => {
  it('should accept origins exactly as browsers send them', () => {
    expect(parseOrigin('https://portal.example.com')).toBe('https://portal.example.com');
    expect(parseOrigin('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080');
    for (const bad of ['https://portal.example.com/', 'https://x/path', 'null', 'portal.example.com', '*']) {
      expect(() => parseOrigin(bad)).toThrow(ConfigError);
    }
  });
});
