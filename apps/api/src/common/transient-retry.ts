import { QueryFailedError } from 'typeorm';

/**
 * True for failures that may pass on a retry: the database unreachable or
 * restarting (connection errors, SQLSTATE classes 08 and 57P, serialization
 * failures, deadlocks). A constraint or syntax error will fail the same way again.
 */
export function isTransientDbError(err: unknown): boolean {
  if (err instanceof QueryFailedError) {
    const code = (err.driverError as { code?: string } | undefined)?.code ?? '';
    if (code === '40001' || code === '40P01') return true;
  }
  return isDbUnavailableError(err);
}

/**
 * True when the database cannot be reached or is not accepting work: connection refused, reset
 * or timed out, the connection dropped, SQLSTATE classes 08 (connection exception) and 57P
 * (shutdown, cannot connect now), 53300 (too many connections). The API answers these with 503.
 */
export function isDbUnavailableError(err: unknown): boolean {
  if (err instanceof QueryFailedError) {
    const code = (err.driverError as { code?: string } | undefined)?.code ?? '';
    return code.startsWith('08') || code.startsWith('57P') || code === '53300';
  }
  // Duck-typed: errors of node:net come from another realm under Jest's VM, where instanceof Error fails.
  if (typeof err !== 'object' || err === null) return false;
  const { code, message } = err as { code?: unknown; message?: unknown };
  return (
    typeof message === 'string' &&
    (code === 'ECONNREFUSED' ||
      code === 'ECONNRESET' ||
      code === 'ETIMEDOUT' ||
      code === 'EHOSTUNREACH' ||
      (typeof code === 'string' && /^(08|57P)/.test(code)) ||
      code === '53300' ||
      /Connection terminated|timeout exceeded when trying to connect/i.test(message))
  );
}

/**
 * Runs `task`, retrying transient database failures with exponential backoff
 * (about 30 s in all by default), so a short database outage delays device
 * messages instead of losing them.
 */
export async function retryTransient<T>(task: () => Promise<T>, attempts = 8, baseDelayMs = 100): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await task();
    } catch (err) {
      if (attempt >= attempts || !isTransientDbError(err)) throw err;
      await new Promise((r) => setTimeout(r, Math.min(baseDelayMs * 2 ** (attempt - 1), 10_000)));
    }
  }
}
