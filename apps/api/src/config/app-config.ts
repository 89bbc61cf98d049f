import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { ACCOUNT_NAME_PATTERN, isIpv4Cidr } from '@app/protocol';
import { bool, ConfigError, int, str, type Env } from './env';
import { loadWebhookConfig, type WebhookConfig } from './webhook-config';

export { ConfigError } from './env';

/**
 * The whole runtime configuration, read from the environment in one place and
 * validated at boot. A bad value stops the process with a message naming the variable.
 */
export interface AppConfig {
  port: number;
  /** Absent: an embedded PostgreSQL is started under dataDir. */
  databaseUrl?: string;
  /** Absent: an embedded MQTT broker is started on mqttPort. */
  mqttUrl?: string;
  mqttPort: number;
  mqttUsername?: string;
  mqttPassword?: string;
  /** Stable per instance: the Kura `requester.client.id` replies are routed to. */
  mqttClientId: string;
  /** false (default): a persistent session, so nothing is lost while the cloud reconnects. */
  mqttCleanSession: boolean;
  /** Limits of the embedded broker against clients that flood it (see mqtt/connection-guard.ts). */
  mqttLimits: {
    /** Largest MQTT packet from an authenticated client. */
    maxPacketBytes: number;
    /** Largest packet before authentication (the CONNECT: client id, will, credentials). */
    maxConnectBytes: number;
    /** Connections from one address that have not authenticated yet. */
    maxUnauthenticatedPerAddress: number;
    /** How long a connection may take to send its CONNECT and be authenticated. */
    connectTimeoutMs: number;
  };
  /**
   * Which broker checks devices and gateways (docs/brokers.md): the embedded one, an external one
   * left open, Mosquitto's dynamic security managed by the cloud, or EMQX asking the cloud.
   */
  mqttBrokerKind: MqttBrokerKind;
  /** Only with mqttBrokerKind `emqx`. */
  emqx?: EmqxConfig;
  /** Group name for `$share/...` subscriptions when several API instances share a broker. */
  mqttSharedGroup?: string;
  /** How often this process renews its instance lease, and how often it reaps expired ones. */
  instanceHeartbeatMs: number;
  /** How long a lease lasts unrenewed: a dead instance's RUNNING operations are closed after it. */
  instanceLeaseMs: number;
  /** The status requests of a connection resync (after a start or a broker reconnect). */
  resync: { concurrency: number; timeoutMs: number };
  dataDir: string;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  jwtSecret: string;
  jwtSecretGenerated: boolean;
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  adminUsername: string;
  adminPassword?: string;
  /** ADMIN_PASSWORD_RESET=true: replace the stored admin password by ADMIN_PASSWORD at start. */
  adminPasswordReset: boolean;
  rootAccountName: string;
  /** Accounts get their VPN subnet from this supernet unless one is given. */
  vpnSupernet: string;
  vpnSubnetPrefix: number;
  /** Engineers' computers get their tunnel addresses here (outside vpnSupernet). */
  vpnClientPool: string;
  vpnKeepalive: number;
  /** A device peer whose MQTT link and handshakes have both been gone this long leaves its gateway. */
  vpnPeerGraceSeconds: number;
  /** A gateway handshake this recent proves a device is there even while its MQTT link is down. */
  vpnHandshakeFreshSeconds: number;
  /** How often the peer sweeps (grace period, gateways lagging behind, session expiry) run. */
  vpnSweepIntervalMs: number;
  /** How often an engineer's client pings its session; 3 silent intervals end it. */
  vpnSessionPingIntervalSeconds: number;
  /** The base URL clients are told to use (FendVPN discovery); derived from the request when unset. */
  publicUrl?: string;
  bodyLimit: string;
  /**
   * Express "trust proxy": which hops may set X-Forwarded-For (the client address used by the
   * sign-in throttle). Unset: none; the TCP peer is the client.
   */
  trustProxy?: string | number;
  /** Failed sign-ins counted per username and per client address within loginWindowSeconds. */
  loginMaxFailuresPerUser: number;
  loginMaxFailuresPerAddress: number;
  loginWindowSeconds: number;
  /** Requests per minute per principal (user or API key) on authenticated routes; 0 = no limit. */
  rateLimitPerMinute: number;
  /** Direct child accounts an account may have (the root account is exempt). */
  accountMaxChildren: number;
  /** Accounts below an account, at any depth (the root account is exempt). */
  accountMaxDescendants: number;
  /** Blocks of vpnSupernet that only accounts created by root-account admins may take. */
  vpnSubnetReserve: number;
  /** How often expired access tokens and stale sign-in counters are deleted. */
  tokenPurgeIntervalMs: number;
  /** Signed webhooks (config/webhook-config.ts). */
  webhooks: WebhookConfig;
  /** Browser origins allowed to call the API (CORS); empty = no CORS headers for anyone. */
  corsOrigins: string[];
  /** When set, GET /metrics needs `Authorization: Bearer <metricsToken>`; unset = public. */
  metricsToken?: string;
  /** The fleet event stream (docs/events.md). */
  eventStream: {
    /** A comment line this often keeps proxies from closing an idle stream. */
    heartbeatMs: number;
    /** How often the shared poller reads new events from the database. */
    pollMs: number;
    /** How often open streams re-check their access token (revocation ends them). */
    authRecheckMs: number;
  };
}

export const MQTT_BROKER_KINDS = ['embedded', 'external-open', 'mosquitto-dynsec', 'emqx'] as const;
export type MqttBrokerKind = (typeof MQTT_BROKER_KINDS)[number];

export interface EmqxConfig {
  /** The shared secret EMQX sends in the `x-emqx-auth-secret` header of its HTTP auth request. */
  authSecret: string;
  /** EMQX's REST API (e.g. http://emqx:18083), used to kick a deleted or disabled client. */
  apiUrl: string;
  apiKey: string;
  apiSecret: string;
}

/** MQTT_BROKER_KIND and what each kind needs; the default keeps today's behaviour. */
function brokerKind(env: Env, mqttUrl: string | undefined): { kind: MqttBrokerKind; emqx?: EmqxConfig } {
  const raw = str(env, 'MQTT_BROKER_KIND');
  const kind = (raw ?? (mqttUrl ? 'external-open' : 'embedded')) as MqttBrokerKind;
  if (!MQTT_BROKER_KINDS.includes(kind)) {
    throw new ConfigError('MQTT_BROKER_KIND', `must be one of ${MQTT_BROKER_KINDS.join(', ')}, got "${raw}"`);
  }
  if (kind === 'embedded') {
    if (mqttUrl) throw new ConfigError('MQTT_BROKER_KIND', 'embedded cannot be used with MQTT_URL');
    return { kind };
  }
  if (!mqttUrl) throw new ConfigError('MQTT_URL', `must be set when MQTT_BROKER_KIND is ${kind}`);
  if (kind === 'mosquitto-dynsec') {
    for (const name of ['MQTT_USERNAME', 'MQTT_PASSWORD']) {
      if (str(env, name) === undefined) {
        throw new ConfigError(
          name,
          'must be set to a dynsec client holding the admin role (mosquitto-dynsec)',
        );
      }
    }
  }
  if (kind !== 'emqx') return { kind };
  const authSecret = str(env, 'EMQX_AUTH_SECRET');
  if (authSecret === undefined || authSecret.length < 16) {
    throw new ConfigError('EMQX_AUTH_SECRET', 'must be set to a secret of at least 16 characters (emqx)');
  }
  const apiUrl = url(env, 'EMQX_API_URL', ['http:', 'https:']);
  if (!apiUrl) throw new ConfigError('EMQX_API_URL', 'must be set to the EMQX REST API base URL (emqx)');
  const apiKey = str(env, 'EMQX_API_KEY');
  if (!apiKey) throw new ConfigError('EMQX_API_KEY', 'must be set to an EMQX API key (emqx)');
  const apiSecret = str(env, 'EMQX_API_SECRET');
  if (!apiSecret)
    throw new ConfigError('EMQX_API_SECRET', 'must be set to the secret of EMQX_API_KEY (emqx)');
  return { kind, emqx: { authSecret, apiUrl: apiUrl.replace(/\/+$/, ''), apiKey, apiSecret } };
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, 'must be a URL');
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use one of ${protocols.join(', ')}`);
  }
  return raw;
}

/** Express "trust proxy": a hop count, or a comma list of addresses, CIDRs and presets. */
function trustProxy(env: Env, name: string): string | number | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  if (/^\d{1,2}$/.test(raw)) return Number(raw);
  const entries = raw.split(',').map((e) => e.trim());
  const valid = entries.every(
    (e) => ['loopback', 'linklocal', 'uniquelocal'].includes(e) || /^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(e),
  );
  if (!valid) {
    throw new ConfigError(
      name,
      `must be a hop count or a comma list of addresses, CIDRs, loopback, linklocal, uniquelocal; got "${raw}"`,
    );
  }
  return entries.join(',');
}

function cidr(env: Env, name: string, def: string): string {
  const raw = str(env, name) ?? def;
  if (!isIpv4Cidr(raw)) {
    throw new ConfigError(name, `must be an IPv4 CIDR such as 10.200.0.0/16, got "${raw}"`);
  }
  return raw;
}

function ipv4ToInt(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

function cidrsOverlap(a: string, b: string): boolean {
  const range = (c: string): [number, number] => {
    const [ip, prefix] = c.split('/');
    const size = 2 ** (32 - Number(prefix));
    const start = Math.floor(ipv4ToInt(ip) / size) * size;
    return [start, start + size - 1];
  };
  const [a0, a1] = range(a);
  const [b0, b1] = range(b);
  return a0 <= b1 && b0 <= a1;
}

/** A comma list of exact origins (`https://dash.example.com`, `http://localhost:8080`). */
function origins(env: Env, name: string): string[] {
  const raw = str(env, name);
  if (raw === undefined) return [];
  const entries = raw
    .split(',')
    .map((e) => e.trim())
    .filter((e) => e !== '');
  for (const entry of entries) {
    let origin: string | undefined;
    try {
      const parsed = new URL(entry);
      if (parsed.protocol === 'http:' || parsed.protocol === 'https:') origin = parsed.origin;
    } catch {
      origin = undefined;
    }
    // The browser sends the serialised origin; anything else (a path, a slash, `*`) would never match.
    if (origin !== entry) {
      throw new ConfigError(
        name,
        `must be a comma list of origins such as https://dash.example.com (http or https, host, ` +
          `optional port, lower case, no path or trailing slash); "${entry}" is not one`,
      );
    }
  }
  return [...new Set(entries)];
}

/** A bearer secret: long enough to resist guessing, in the characters a Bearer header carries. */
function bearerSecret(env: Env, name: string): string | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  if (raw.length < 16 || raw.length > 512 || !/^[A-Za-z0-9._~+/=-]+$/.test(raw)) {
    throw new ConfigError(name, 'must be 16 to 512 characters of A-Z a-z 0-9 . _ ~ + / = -');
  }
  return raw;
}

export function loadConfig(env: Env = process.env): AppConfig {
  const port = int(env, 'PORT', 3000, 0, 65535);
  const logLevel = (str(env, 'LOG_LEVEL') ?? 'info') as AppConfig['logLevel'];
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`);
  }
  const jwtSecretRaw = str(env, 'JWT_SECRET');
  if (jwtSecretRaw !== undefined && jwtSecretRaw.length < 32) {
    throw new ConfigError('JWT_SECRET', 'must be at least 32 characters');
  }
  const accessTokenTtlSeconds = int(env, 'JWT_ACCESS_TTL_SECONDS', 30 * 60, 10, 24 * 3600);
  const refreshTokenTtlSeconds = int(env, 'JWT_REFRESH_TTL_SECONDS', 5 * 3600, 60, 90 * 24 * 3600);
  const vpnSupernet = cidr(env, 'VPN_SUPERNET', '10.200.0.0/13');
  const vpnSubnetPrefix = int(env, 'VPN_SUBNET_PREFIX', 20, 8, 30);
  if (vpnSubnetPrefix < Number(vpnSupernet.split('/')[1])) {
    throw new ConfigError('VPN_SUBNET_PREFIX', 'must not be shorter than the VPN_SUPERNET prefix');
  }
  const adminPassword = str(env, 'ADMIN_PASSWORD');
  if (adminPassword !== undefined && adminPassword.length < 8) {
    throw new ConfigError('ADMIN_PASSWORD', 'must be at least 8 characters');
  }
  const adminPasswordReset = bool(env, 'ADMIN_PASSWORD_RESET', false);
  if (adminPasswordReset && adminPassword === undefined) {
    throw new ConfigError('ADMIN_PASSWORD_RESET', 'needs ADMIN_PASSWORD: the password to reset to');
  }
  const vpnClientPool = cidr(env, 'VPN_CLIENT_POOL', '10.208.0.0/16');
  if (Number(vpnClientPool.split('/')[1]) > 30) {
    throw new ConfigError('VPN_CLIENT_POOL', 'must leave room for clients (a prefix of /30 or shorter)');
  }
  if (cidrsOverlap(vpnClientPool, vpnSupernet)) {
    throw new ConfigError('VPN_CLIENT_POOL', `must not overlap VPN_SUPERNET (${vpnSupernet})`);
  }
  const rootAccountName = str(env, 'ROOT_ACCOUNT_NAME') ?? 'root';
  if (!ACCOUNT_NAME_PATTERN.test(rootAccountName)) {
    throw new ConfigError('ROOT_ACCOUNT_NAME', 'must match [a-z0-9][a-z0-9-]{1,62}');
  }
  const mqttClientId =
    str(env, 'MQTT_CLIENT_ID') ?? `vpn-cloud-${hostname()}-${port}`.replace(/[^A-Za-z0-9._-]/g, '-');
  const sharedGroup = str(env, 'MQTT_SHARED_GROUP');
  if (sharedGroup !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(sharedGroup)) {
    throw new ConfigError('MQTT_SHARED_GROUP', 'must match [A-Za-z0-9_-]{1,64}');
  }
  const instanceHeartbeatMs = int(env, 'INSTANCE_HEARTBEAT_MS', 5000, 100, 600_000);
  const instanceLeaseMs = int(env, 'INSTANCE_LEASE_MS', 20_000, 300, 3_600_000);
  // Two missed beats, not one: a renewal delayed by a busy event loop or database must not
  // make a live instance look dead.
  if (instanceLeaseMs < 2 * instanceHeartbeatMs) {
    throw new ConfigError(
      'INSTANCE_LEASE_MS',
      `must be at least twice INSTANCE_HEARTBEAT_MS (${instanceHeartbeatMs}), got ${instanceLeaseMs}`,
    );
  }
  const mqttUrl = url(env, 'MQTT_URL', ['mqtt:', 'mqtts:', 'tcp:', 'ws:', 'wss:']);
  const broker = brokerKind(env, mqttUrl);
  if (sharedGroup !== undefined && !mqttUrl) {
    throw new ConfigError('MQTT_SHARED_GROUP', 'needs MQTT_URL: replicas share one external broker');
  }
  const subnetBlocks = 2 ** (vpnSubnetPrefix - Number(vpnSupernet.split('/')[1]));
  return {
    port,
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    mqttUrl,
    mqttPort: int(env, 'MQTT_PORT', 1883, 0, 65535),
    mqttUsername: str(env, 'MQTT_USERNAME'),
    mqttPassword: str(env, 'MQTT_PASSWORD'),
    mqttClientId,
    mqttCleanSession: bool(env, 'MQTT_CLEAN_SESSION', false),
    mqttLimits: {
      maxPacketBytes: int(env, 'MQTT_MAX_PACKET_BYTES', 256 * 1024, 1024, 256 * 1024 * 1024),
      maxConnectBytes: int(env, 'MQTT_MAX_CONNECT_BYTES', 16 * 1024, 256, 1024 * 1024),
      maxUnauthenticatedPerAddress: int(env, 'MQTT_MAX_UNAUTHENTICATED_PER_ADDRESS', 64, 1, 100_000),
      connectTimeoutMs: int(env, 'MQTT_CONNECT_TIMEOUT_MS', 10_000, 100, 300_000),
    },
    mqttBrokerKind: broker.kind,
    emqx: broker.emqx,
    mqttSharedGroup: sharedGroup,
    instanceHeartbeatMs,
    instanceLeaseMs,
    resync: {
      concurrency: int(env, 'RESYNC_CONCURRENCY', 200, 1, 10_000),
      timeoutMs: int(env, 'RESYNC_TIMEOUT_MS', 10_000, 100, 600_000),
    },
    dataDir: resolve(str(env, 'DATA_DIR') ?? './.data'),
    logLevel,
    jwtSecret: jwtSecretRaw ?? '',
    jwtSecretGenerated: jwtSecretRaw === undefined,
    accessTokenTtlSeconds,
    refreshTokenTtlSeconds,
    adminUsername: str(env, 'ADMIN_USERNAME') ?? 'admin',
    adminPassword,
    adminPasswordReset,
    rootAccountName,
    vpnSupernet,
    vpnSubnetPrefix,
    vpnClientPool,
    vpnKeepalive: int(env, 'VPN_KEEPALIVE', 25, 0, 65535),
    vpnPeerGraceSeconds: int(env, 'VPN_PEER_GRACE_SECONDS', 600, 1, 30 * 24 * 3600),
    vpnHandshakeFreshSeconds: int(env, 'VPN_HANDSHAKE_FRESH_SECONDS', 180, 1, 24 * 3600),
    vpnSweepIntervalMs: int(env, 'VPN_SWEEP_INTERVAL_MS', 30_000, 100, 3_600_000),
    vpnSessionPingIntervalSeconds: int(env, 'VPN_SESSION_PING_INTERVAL_SECONDS', 30, 1, 3600),
    publicUrl: url(env, 'PUBLIC_URL', ['http:', 'https:'])?.replace(/\/+$/, ''),
    bodyLimit: str(env, 'HTTP_BODY_LIMIT') ?? '100kb',
    trustProxy: trustProxy(env, 'TRUST_PROXY'),
    loginMaxFailuresPerUser: int(env, 'LOGIN_MAX_FAILURES', 10, 1, 1000),
    loginMaxFailuresPerAddress: int(env, 'LOGIN_MAX_FAILURES_PER_ADDRESS', 30, 1, 100_000),
    loginWindowSeconds: int(env, 'LOGIN_WINDOW_SECONDS', 300, 1, 24 * 3600),
    rateLimitPerMinute: int(env, 'RATE_LIMIT_PER_MINUTE', 6000, 0, 10_000_000),
    accountMaxChildren: int(env, 'ACCOUNT_MAX_CHILDREN', 25, 0, 1_000_000),
    accountMaxDescendants: int(env, 'ACCOUNT_MAX_DESCENDANTS', 200, 0, 1_000_000),
    vpnSubnetReserve: int(
      env,
      'VPN_SUBNET_RESERVE',
      Math.min(subnetBlocks - 1, Math.max(1, Math.floor(subnetBlocks / 8))),
      0,
      Math.max(0, subnetBlocks - 1),
    ),
    tokenPurgeIntervalMs: int(env, 'TOKEN_PURGE_INTERVAL_MS', 600_000, 100, 24 * 3_600_000),
    webhooks: loadWebhookConfig(env),
    corsOrigins: origins(env, 'CORS_ORIGINS'),
    metricsToken: bearerSecret(env, 'METRICS_TOKEN'),
    eventStream: {
      heartbeatMs: int(env, 'SSE_HEARTBEAT_MS', 15_000, 50, 3_600_000),
      pollMs: int(env, 'SSE_POLL_INTERVAL_MS', 300, 10, 60_000),
      authRecheckMs: int(env, 'SSE_AUTH_RECHECK_MS', 15_000, 50, 3_600_000),
    },
  };
}

/** Injection token for the AppConfig object. */
export const APP_CONFIG = Symbol('APP_CONFIG');
