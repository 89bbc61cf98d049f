import { ConfigError, loadConfig } from './app-config';

describe('loadConfig: the hardening settings', () => {
  it('should default to the documented values', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      trustProxy: undefined,
      loginMaxFailuresPerUser: 10,
      loginMaxFailuresPerAddress: 30,
      loginWindowSeconds: 300,
      rateLimitPerMinute: 6000,
      accountMaxChildren: 25,
      accountMaxDescendants: 200,
      // 10.200.0.0/13 in /20 blocks: 128 blocks, an eighth of them kept for the root account.
      vpnSubnetReserve: 16,
      tokenPurgeIntervalMs: 600_000,
    });
  });

  it('should read every variable', () => {
    const config = loadConfig({
      TRUST_PROXY: 'loopback, 10.0.0.0/8',
      LOGIN_MAX_FAILURES: '5',
      LOGIN_MAX_FAILURES_PER_ADDRESS: '50',
      LOGIN_WINDOW_SECONDS: '600',
      RATE_LIMIT_PER_MINUTE: '0',
      ACCOUNT_MAX_CHILDREN: '3',
      ACCOUNT_MAX_DESCENDANTS: '9',
      VPN_SUBNET_RESERVE: '0',
      TOKEN_PURGE_INTERVAL_MS: '1000',
    });
    expect(config).toMatchObject({
      trustProxy: 'loopback,10.0.0.0/8',
      loginMaxFailuresPerUser: 5,
      loginMaxFailuresPerAddress: 50,
      loginWindowSeconds: 600,
      rateLimitPerMinute: 0,
      accountMaxChildren: 3,
      accountMaxDescendants: 9,
      vpnSubnetReserve: 0,
      tokenPurgeIntervalMs: 1000,
    });
    expect(loadConfig({ TRUST_PROXY: '1' }).trustProxy).toBe(1);
  });

  it('should scale the default reserve with the supernet, and keep at least one block for tenants', () => {
    expect(loadConfig({ VPN_SUPERNET: '10.200.0.0/16', VPN_SUBNET_PREFIX: '20' }).vpnSubnetReserve).toBe(2);
    expect(loadConfig({ VPN_SUPERNET: '10.200.0.0/20', VPN_SUBNET_PREFIX: '20' }).vpnSubnetReserve).toBe(0);
  });

  it.each([
    ['TRUST_PROXY', 'true'],
    ['TRUST_PROXY', 'everyone'],
    ['LOGIN_MAX_FAILURES', '0'],
    ['RATE_LIMIT_PER_MINUTE', '-1'],
    ['ACCOUNT_MAX_CHILDREN', 'many'],
    ['VPN_SUBNET_RESERVE', '128'],
    ['TOKEN_PURGE_INTERVAL_MS', '10'],
  ])('should refuse %s=%s naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });
});
