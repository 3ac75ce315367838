import { sleep } from './async.js'
import { StoreError } from './errors.js'

/** Waits between tries; the last one repeats. */
const DELAYS_MS = [50, 200, 500]

/**
 * Run `call`; while it fails with a retryable `StoreError` (surely not applied, or safe to send
 * again), wait and run it again: at most `policy.attempts` more times, none started after
 * `policy.budgetMs`. Only calls that cannot count twice come here (an idempotency key, a hold
 * settled by id). The signal aborts the wait as well as the call.
 */
export async function withRetries<T>(
  policy: { attempts: number; budgetMs: number } | undefined,
  signal: AbortSignal | undefined,
  call: () => T | Promise<T>,
): Promise<T> {
  if (policy === undefined || policy.attempts === 0) return call()
  const startedAt = performance.now()
  for (let attempt = 0; ; attempt++) {
    try {
      return await call()
    } catch (error) {
      if (!StoreError.isInstance(error) || !error.retryable || attempt >= policy.attempts) throw error
      const delay = DELAYS_MS[Math.min(attempt, DELAYS_MS.length - 1)]!
      if (performance.now() - startedAt + delay > policy.budgetMs) throw error
      await sleep(delay, signal)
    }
  }
}
