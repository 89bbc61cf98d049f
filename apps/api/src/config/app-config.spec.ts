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

describe('loadConfig: CORS_ORIGINS and METRICS_TOKEN', () => {
  it('should default to no CORS origins and a public /metrics', () => {
    const config = loadConfig({});
    expect(config.corsOrigins).toEqual([]);
    expect(config.metricsToken).toBeUndefined();
    expect(loadConfig({ CORS_ORIGINS: '  ' }).corsOrigins).toEqual([]);
  });

  it('should read a comma list of exact origins, trimmed and without duplicates', () => {
    const config = loadConfig({
      CORS_ORIGINS:
        'https://dash.example.com, http://localhost:8080,,http://127.0.0.1:3001,https://dash.example.com',
    });
    expect(config.corsOrigins).toEqual([
      'https://dash.example.com',
      'http://localhost:8080',
      'http://127.0.0.1:3001',
    ]);
  });

  it.each([
    '*',
    'dash.example.com',
    'https://dash.example.com/',
    'https://dash.example.com/app',
    'https://Dash.Example.com',
    'https://dash.example.com:443',
    'ftp://files.example.com',
    'null',
    'https://ok.example.com, https://bad.example.com/path',
  ])('should refuse CORS_ORIGINS=%s naming the variable and the entry', (value) => {
    expect(() => loadConfig({ CORS_ORIGINS: value })).toThrow(ConfigError);
    expect(() => loadConfig({ CORS_ORIGINS: value })).toThrow(/CORS_ORIGINS .*is not one/);
  });

  it('should read METRICS_TOKEN', () => {
    expect(loadConfig({ METRICS_TOKEN: 'prometheus-scrape-secret-1' }).metricsToken).toBe(
      'prometheus-scrape-secret-1',
    );
  });

  it.each(['short', 'has spaces in the middle of it', 'ümlauts-are-not-token-chars', 'x'.repeat(513)])(
    'should refuse bad METRICS_TOKEN #%# naming the variable',
    (value) => {
      expect(() => loadConfig({ METRICS_TOKEN: value })).toThrow(ConfigError);
      expect(() => loadConfig({ METRICS_TOKEN: value })).toThrow('METRICS_TOKEN');
    },
  );
});

describe('loadConfig: MQTT_BROKER_KIND', () => {
  const url = 'mqtt://broker:1883';

  it('should default to embedded without MQTT_URL and to external-open with it', () => {
    expect(loadConfig({}).mqttBrokerKind).toBe('embedded');
    expect(loadConfig({ MQTT_URL: url }).mqttBrokerKind).toBe('external-open');
  });

  it('should refuse an unknown kind, and a kind that does not fit MQTT_URL', () => {
    expect(() => loadConfig({ MQTT_BROKER_KIND: 'hivemq', MQTT_URL: url })).toThrow('MQTT_BROKER_KIND');
    expect(() => loadConfig({ MQTT_BROKER_KIND: 'embedded', MQTT_URL: url })).toThrow('MQTT_BROKER_KIND');
    expect(() => loadConfig({ MQTT_BROKER_KIND: 'mosquitto-dynsec' })).toThrow('MQTT_URL');
  });

  it('should need the admin credentials for mosquitto-dynsec', () => {
    const env = { MQTT_BROKER_KIND: 'mosquitto-dynsec', MQTT_URL: url };
    expect(() => loadConfig(env)).toThrow('MQTT_USERNAME');
    expect(() => loadConfig({ ...env, MQTT_USERNAME: 'admin' })).toThrow('MQTT_PASSWORD');
    expect(loadConfig({ ...env, MQTT_USERNAME: 'admin', MQTT_PASSWORD: 'pw' }).mqttBrokerKind).toBe(
      'mosquitto-dynsec',
    );
  });

  it('should need the auth secret and the REST API settings for emqx', () => {
    const env: Record<string, string> = {
      MQTT_BROKER_KIND: 'emqx',
      MQTT_URL: url,
      EMQX_AUTH_SECRET: 'a-secret-of-20-chars',
      EMQX_API_URL: 'http://emqx:18083/',
      EMQX_API_KEY: 'key',
      EMQX_API_SECRET: 'secret',
    };
    expect(loadConfig(env).emqx).toEqual({
      authSecret: 'a-secret-of-20-chars',
      apiUrl: 'http://emqx:18083',
      apiKey: 'key',
      apiSecret: 'secret',
    });
    for (const name of ['EMQX_AUTH_SECRET', 'EMQX_API_URL', 'EMQX_API_KEY', 'EMQX_API_SECRET']) {
      expect(() => loadConfig({ ...env, [name]: '' })).toThrow(name);
    }
    expect(() => loadConfig({ ...env, EMQX_AUTH_SECRET: 'short' })).toThrow('EMQX_AUTH_SECRET');
  });
});

describe('loadConfig: ADMIN_PASSWORD_RESET', () => {
  it('should be off by default and on with true', () => {
    expect(loadConfig({}).adminPasswordReset).toBe(false);
    expect(
      loadConfig({ ADMIN_PASSWORD: 'long-enough', ADMIN_PASSWORD_RESET: 'true' }).adminPasswordReset,
    ).toBe(true);
  });

  it('should refuse a reset without ADMIN_PASSWORD, naming both variables', () => {
    expect(() => loadConfig({ ADMIN_PASSWORD_RESET: 'true' })).toThrow(
      /ADMIN_PASSWORD_RESET .*ADMIN_PASSWORD/,
    );
    expect(() => loadConfig({ ADMIN_PASSWORD: 'long-enough', ADMIN_PASSWORD_RESET: 'yes' })).toThrow(
      ConfigError,
    );
  });
});

describe('loadConfig: the instance lease', () => {
  it('should default to a 5 s heartbeat and a 20 s lease, and read both', () => {
    expect(loadConfig({})).toMatchObject({ instanceHeartbeatMs: 5000, instanceLeaseMs: 20_000 });
    expect(loadConfig({ INSTANCE_HEARTBEAT_MS: '500', INSTANCE_LEASE_MS: '1000' })).toMatchObject({
      instanceHeartbeatMs: 500,
      instanceLeaseMs: 1000,
    });
  });

  it('should refuse a lease shorter than two heartbeats, naming INSTANCE_LEASE_MS', () => {
    expect(() => loadConfig({ INSTANCE_HEARTBEAT_MS: '5000', INSTANCE_LEASE_MS: '9999' })).toThrow(
      new ConfigError('INSTANCE_LEASE_MS', 'must be at least twice INSTANCE_HEARTBEAT_MS (5000), got 9999'),
    );
    expect(() => loadConfig({ INSTANCE_HEARTBEAT_MS: '50' })).toThrow(ConfigError);
  });
});

describe('loadConfig: MQTT_SHARED_GROUP', () => {
  it('should need an external broker', () => {
    expect(() => loadConfig({ MQTT_SHARED_GROUP: 'api' })).toThrow(
      new ConfigError('MQTT_SHARED_GROUP', 'needs MQTT_URL: replicas share one external broker'),
    );
    expect(loadConfig({ MQTT_SHARED_GROUP: 'api', MQTT_URL: 'mqtt://broker:1883' }).mqttSharedGroup).toBe(
      'api',
    );
  });
});
