import pino from 'pino';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
export const LOG_LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

export type Logger = pino.Logger;

/**
 * One JSON line per event on stdout, with the level as a word so that scripts and tests
 * can grep it. Secrets are redacted by key name as a safety net; callers still never
 * pass passwords or private keys on purpose.
 */
export function createLogger(
  level: LogLevel,
  bindings: Record<string, string> = {},
  app = 'vpn-agent',
): Logger {
  return pino({
    level,
    base: { app, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: {
      paths: ['password', '*.password', 'privateKey', '*.privateKey', 'token', '*.token'],
      censor: '***',
    },
  });
}

/** Error details for a log line without the stack, which is noise for expected failures. */
export function errorFields(err: unknown): { err: string; code?: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' ? { err: err.message, code } : { err: err.message };
  }
  return { err: String(err) };
}

/** A broker or API URL fit for a log line: user info (which may hold a password) removed. */
export function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return '<unparsable URL>';
  }
}
