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
      this.inFlight.set(request.key, shared)
    }
    return abortable(shared, signal)
  }

  private async loadOnce(request: LoadRequest): Promise<void> {
    const lock = lockKey(request.key)
    let revoked = 0
    for (let attempt = 0; attempt <= this.lock.retries; attempt++) {
      const token = randomUUID()
      if (await this.store.acquireLock(lock, token, this.lock.ttlMs)) {
        try {
          // Another process may have seeded it between our miss and our lock.
          if (await this.store.get(request.key)) return
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
            return
          }
          // Not seeded: another load's counter is in (done), or a give-back revoked this lock
          // and the usage read may be stale: read again, without waiting.
          if (await this.store.get(request.key)) return
          revoked++
          continue
        } finally {
          await this.store.releaseLock(lock, token).catch(() => {})
        }
      }
      if (await this.store.get(request.key)) return
      if (attempt < this.lock.retries) await sleep(this.lock.retryDelayMs)
    }
    const because =
      revoked > 0 ? `, and ${revoked} of its loads were revoked by refunds that met the missing counter` : ''
    throw new LockTimeoutError(
      `counter ${request.key} was being loaded by another process for longer than ${this.lock.retries} x ${this.lock.retryDelayMs} ms${because}`,
      { key: request.key, waitedMs: this.lock.retries * this.lock.retryDelayMs },
    )
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
