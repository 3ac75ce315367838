import { randomUUID } from 'node:crypto'
import { abortable, sleep, withDeadline } from './async.js'
import { InvalidArgumentError, LoadError, LockTimeoutError, toStoreError } from './errors.js'
import { lockKey } from './keys.js'
import type { CounterStore } from './store/contract.js'
import { checkCount } from './validate.js'

/** What the loader needs to fill one missing counter from the system of record. */
export interface LoadRequest {
  key: string
  ttlMs: number | undefined
  /** Calls the user's `loadUsage`; returns the usage to seed. */
  readUsage(): Promise<number>
  /** Told the loaded usage once it is in the store. */
  onLoaded?(usage: number, durationMs: number): void
}

/**
 * Fills missing counters from the system of record without a stampede: one load per key in
 * this process (single-flight), then one across processes (a store lock released only with its
 * own token), and `seed` (set-if-absent) so a counter that appeared meanwhile is never overwritten.
 *
 * The seed also needs the lock still held by this load's token. A refund (or a hold given back)
 * that meets the missing counter changes no counter but deletes the lock (see `CounterOp`): the
 * usage this load read may still count those units (read before the system of record dropped
 * them), so the load reads again instead of restoring them. Beyond that, the lock only spares
 * the database.
 */
export class Loader {
  private readonly inFlight = new Map<string, Promise<void>>()

  constructor(
    private readonly store: CounterStore,
    private readonly lock: { ttlMs: number; retries: number; retryDelayMs: number },
  ) {}

  /** Resolve once the counter exists (or was seeded). Each caller's signal aborts only its own wait. */
  load(request: LoadRequest, signal?: AbortSignal): Promise<void> {
    let shared = this.inFlight.get(request.key)
    if (!shared) {
      shared = this.loadOnce(request).finally(() => this.inFlight.delete(request.key))
      // Each caller gets the outcome through its own wait; when every caller has given up (its
      // signal aborted), a failed load must still not be an unhandled rejection.
      shared.catch(() => {})
      this.inFlight.set(request.key, shared)
    }
    return abortable(shared, signal)
  }

  private async loadOnce(request: LoadRequest): Promise<void> {
    const lock = lockKey(request.key)
    let waits = 0
    let revoked = 0
    for (;;) {
      const token = randomUUID()
      if (await this.store.acquireLock(lock, token, this.lock.ttlMs)) {
        try {
          if (await this.loadUnder(request, token)) return
        } finally {
          await this.store.releaseLock(lock, token).catch(() => {})
        }
        // A give-back revoked this load: the usage it read may still count those units. Read
        // again at once, a bounded number of times (a stream of refunds landing on the missing
        // counter faster than loadUsage answers would revoke every load).
        if (++revoked > this.lock.retries) {
          throw new LoadError(
            `counter ${request.key} could not be loaded: ${revoked} loads in a row were revoked by refunds that met the missing counter while loadUsage ran`,
            { option: 'loadUsage' },
          )
        }
        continue
      }
      // Another process holds the lock: wait for its counter, up to retries x retryDelayMs.
      if (await this.store.get(request.key)) return
      if (waits >= this.lock.retries) break
      waits++
      await sleep(this.lock.retryDelayMs)
    }
    throw new LockTimeoutError(
      `counter ${request.key} was being loaded by another process for longer than ${this.lock.retries} x ${this.lock.retryDelayMs} ms`,
      { key: request.key, waitedMs: this.lock.retries * this.lock.retryDelayMs },
    )
  }

  /**
   * One load under the lock `token` holds: true when the counter is in (seeded by this load, or
   * by another one meanwhile); false when a give-back revoked the lock before the seed.
   */
  private async loadUnder(request: LoadRequest, token: string): Promise<boolean> {
    // Another process may have seeded it between our miss and our lock.
    if (await this.store.get(request.key)) return true
    const startedAt = performance.now()
    // A load that outlives its lock is no longer exclusive, and one that never answers
    // would hold every caller of this counter: bound it by the lock's lifetime.
    const usage = await withDeadline(
      request.readUsage(),
      this.lock.ttlMs,
      () =>
        new LoadError(`loadUsage did not answer within lock.ttlMs (${this.lock.ttlMs} ms) for ${request.key}`, {
          option: 'loadUsage',
        }),
    )
    if (await this.store.seed(request.key, usage, request.ttlMs, token)) {
      request.onLoaded?.(usage, performance.now() - startedAt)
      return true
    }
    return (await this.store.get(request.key)) !== undefined
  }
}

/** Run the user's `loadUsage` and check what it returned. */
export async function readUsage(fn: () => number | Promise<number>): Promise<number> {
  let usage: unknown
  try {
    usage = await fn()
  } catch (error) {
    throw new LoadError(`loadUsage failed: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
      option: 'loadUsage',
    })
  }
  try {
    return checkCount('loadUsage()', usage)
  } catch (error) {
    if (InvalidArgumentError.isInstance(error))
      throw new LoadError(error.message, { cause: error, option: 'loadUsage' })
    throw toStoreError(error)
  }
}
