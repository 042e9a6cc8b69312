import { setTimeout as delay } from 'node:timers/promises';

/**
 * Retries an assertion until it passes or the timeout elapses, for conditions that become true
 * through another process (a database reconnecting, a session appearing). It polls; it never
 * asserts on how long that took.
 */
export async function eventually<T>(assertion: () => Promise<T> | T, timeoutMs = 10_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await assertion();
    } catch (error) {
      if (Date.now() >= deadline) throw error;
      await delay(intervalMs);
    }
  }
}
