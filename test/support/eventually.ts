/**
 * The one polling helper of the test tiers. `eventually` calls `check` until it stops throwing
 * (its assertions hold), or fails once `timeoutMs` has passed with a message that says so and
 * carries the last failure. For effects that happen asynchronously (an MQTT message applied by
 * the API, a process reconnecting); the deadline is a ceiling, never something a test asserts on.
 * `holds` turns "read a value, test a predicate" into such a check.
 */
export async function eventually<T>(
  check: () => Promise<T> | T,
  timeoutMs = 5000,
  intervalMs = 25,
): Promise<T> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() >= deadline) {
        const last = err instanceof Error ? err.message : String(err);
        throw new Error(
          `eventually: timed out after ${Date.now() - started} ms (${attempt} attempts, limit ${timeoutMs} ms); last failure:\n${last}`,
          { cause: err },
        );
      }
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** `value` when `done(value)` holds; otherwise throws naming `what` and the value seen. */
export function holds<T>(what: string, value: T, done: (value: T) => boolean): T {
  if (done(value)) return value;
  throw new Error(`waiting for ${what}; last: ${JSON.stringify(value)}`);
}

/**
 * Asserts that something does NOT happen: waits `ms` (a bounded, deliberate wait, the only kind
 * of fixed sleep the tests may use), then runs `check`. `reason` says why `ms` is long enough:
 * e.g. "the broker delivers to a subscribed client within a few ms; 300 ms is ample". A check
 * that can fail early is polled during the wait, so a violation is reported as soon as it shows.
 */
export async function expectNothingFor(
  ms: number,
  reason: string,
  check: () => Promise<void> | void = () => undefined,
): Promise<void> {
  if (!reason.trim()) throw new Error('expectNothingFor needs a reason for its wait');
  const deadline = Date.now() + ms;
  for (;;) {
    await check();
    const left = deadline - Date.now();
    if (left <= 0) return;
    await new Promise((resolve) => setTimeout(resolve, Math.min(left, 50)));
  }
}

/**
 * `promise`, or an error naming `what` once `timeoutMs` has passed: a ceiling on one awaited
 * event (a process exiting, a response arriving), where `eventually` would poll a state.
 */
export async function within<T>(what: string, promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
