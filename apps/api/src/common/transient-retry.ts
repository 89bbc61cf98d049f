import { QueryFailedError } from 'typeorm';

/**
 * True for failures that may pass on a retry: the database unreachable or
 * restarting (connection errors, SQLSTATE classes 08 and 57P, serialization
 * failures, deadlocks). A constraint or syntax error will fail the same way again.
 */
export function isTransientDbError(err: unknown): boolean {
  if (err instanceof QueryFailedError) {
    const code = (err.driverError as { code?: string } | undefined)?.code ?? '';
    return code.startsWith('08') || code.startsWith('57P') || code === '40001' || code === '40P01';
  }
  const code = (err as { code?: string } | null)?.code;
  return (
    err instanceof Error &&
    (code === 'ECONNREFUSED' ||
      code === 'ECONNRESET' ||
      code === 'ETIMEDOUT' ||
      /Connection terminated|timeout exceeded when trying to connect/i.test(err.message))
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
