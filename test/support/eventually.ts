/**
 * Polls `check` until it stops throwing (its assertions hold) or `timeoutMs` passes, then
 * rethrows the last failure. For effects that happen asynchronously (an MQTT message applied
 * by the API); the deadline is a ceiling, never something a test asserts on.
 */
export async function eventually<T>(
  check: () => Promise<T> | T,
  timeoutMs = 5000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() >= deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
