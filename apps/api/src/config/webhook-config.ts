import { bool, ConfigError, int, str as raw, type Env } from './env';

/**
 * Webhook settings (docs/webhooks.md), read by loadConfig with the rest of the configuration.
 */
export interface WebhookConfig {
  /** WEBHOOK_ALLOW_PRIVATE: accept URLs whose host is (or resolves to) a loopback/private address. */
  allowPrivate: boolean;
  /** WEBHOOK_TIMEOUT_MS: one attempt (connect, request, response headers) is cut after this. */
  timeoutMs: number;
  /** Delays before each retry, already multiplied by WEBHOOK_RETRY_SCALE. */
  retryDelaysMs: number[];
  /** WEBHOOK_POLL_INTERVAL_MS: how often new events are dispatched and due deliveries sent. */
  pollIntervalMs: number;
  /** WEBHOOK_CONCURRENCY: deliveries one instance sends at the same time. */
  concurrency: number;
  /** WEBHOOK_MAX_PER_ACCOUNT: webhook endpoints one account may have. */
  maxPerAccount: number;
  /**
   * WEBHOOK_SECRET_KEY (at least 32 characters): the key the signing secrets are encrypted
   * with at rest. Unset: derived from JWT_SECRET.
   */
  secretKey?: string;
}

/** 5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h, 6 h, 6 h: 11 attempts over about 23 hours. */
export const DEFAULT_RETRY_DELAYS_MS = [
  5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 10_800_000, 21_600_000, 21_600_000, 21_600_000,
];

export function loadWebhookConfig(env: Env): WebhookConfig {
  const scaleRaw = raw(env, 'WEBHOOK_RETRY_SCALE') ?? '1';
  const scale = Number(scaleRaw);
  if (!/^\d+(\.\d+)?$/.test(scaleRaw) || !(scale > 0) || scale > 1000) {
    throw new ConfigError(
      'WEBHOOK_RETRY_SCALE',
      `must be a number above 0 and at most 1000, got "${scaleRaw}"`,
    );
  }
  const delaysRaw = raw(env, 'WEBHOOK_RETRY_DELAYS_MS');
  let delays = DEFAULT_RETRY_DELAYS_MS;
  if (delaysRaw !== undefined) {
    const parts = delaysRaw.split(',').map((p) => p.trim());
    if (parts.length > 50 || parts.some((p) => !/^\d{1,9}$/.test(p))) {
      throw new ConfigError(
        'WEBHOOK_RETRY_DELAYS_MS',
        `must be a comma list of at most 50 delays in milliseconds, got "${delaysRaw}"`,
      );
    }
    delays = parts.map(Number);
  }
  const secretKey = raw(env, 'WEBHOOK_SECRET_KEY');
  if (secretKey !== undefined && secretKey.length < 32) {
    throw new ConfigError('WEBHOOK_SECRET_KEY', 'must be at least 32 characters');
  }
  return {
    allowPrivate: bool(env, 'WEBHOOK_ALLOW_PRIVATE', false),
    timeoutMs: int(env, 'WEBHOOK_TIMEOUT_MS', 10_000, 100, 300_000),
    retryDelaysMs: delays.map((d) => Math.max(1, Math.round(d * scale))),
    pollIntervalMs: int(env, 'WEBHOOK_POLL_INTERVAL_MS', 1000, 10, 60_000),
    concurrency: int(env, 'WEBHOOK_CONCURRENCY', 8, 1, 256),
    maxPerAccount: int(env, 'WEBHOOK_MAX_PER_ACCOUNT', 20, 1, 10_000),
    secretKey,
  };
}
