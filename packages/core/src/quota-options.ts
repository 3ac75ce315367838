import type { CounterStore } from './store/contract.js'
import type { Period, QuotaContext, QuotaResult, Resolvable } from './types.js'

/** What `createQuota` takes: its options, and the hooks with the events they receive. */

/** What `onConsume`, `onRefund` and `onExceeded` receive: the call and its result. */
export interface QuotaEvent<D = unknown> {
  /** The quota's name. */
  quota: string
  id: string
  /** Units the call asked for (after a quota-level `cost` override). */
  cost: number
  result: QuotaResult
  /** The call's `data` option. */
  data: D | undefined
}

/** What `onLoad` receives: the usage `loadUsage` answered, and how long that took (ms). */
export interface QuotaLoadEvent<D = unknown> {
  quota: string
  id: string
  /** The usage seeded into the store. */
  usage: number
  /** Time `loadUsage` took (ms). */
  durationMs: number
  data: D | undefined
}

/** What `onError` receives: the quota's own failure (store fault, load failure) and the operation it broke. */
export interface QuotaErrorEvent<D = unknown> {
  quota: string
  id: string
  operation: 'consume' | 'refund' | 'reserve' | 'settle' | 'get' | 'set' | 'reset' | 'load'
  error: unknown
  data: D | undefined
}

/** What `onCompensate` receives: units the engine gave back on its own, and how that went. */
export interface QuotaCompensateEvent<D = unknown> {
  quota: string
  id: string
  /** Units given back. */
  cost: number
  /** The refund's result when it succeeded. */
  result?: QuotaResult
  /** Why the refund failed, when it did. */
  error?: unknown
  data: D | undefined
}

/**
 * Observers. Each is called before the call's promise settles; one that throws (or rejects)
 * is caught and ignored, so a hook never changes an outcome.
 */
export interface QuotaHooks<D = unknown> {
  /** A consume was granted (or replayed). */
  onConsume?(event: QuotaEvent<D>): unknown
  /** A refund the caller asked for was applied (or replayed). */
  onRefund?(event: QuotaEvent<D>): unknown
  /** A consume or refund was refused. */
  onExceeded?(event: QuotaEvent<D>): unknown
  /** Usage was loaded from `loadUsage` into the store. */
  onLoad?(event: QuotaLoadEvent<D>): unknown
  /** The quota itself failed (store fault, load failure); not the caller's `transact` function. */
  onError?(event: QuotaErrorEvent<D>): unknown
  /**
   * Held units were given back unused: a reservation released (by the caller, a failed
   * `transact`, a `consumeAll` rollback, the middleware's refund of a failed request).
   */
  onCompensate?(event: QuotaCompensateEvent<D>): unknown
}

/** Options of `createQuota`. */
export interface QuotaOptions<D = unknown> {
  /** Namespace of the quota's keys; also its name in headers and errors. 1-256 characters. */
  name: string
  /** Where the counters live. */
  store: CounterStore
  /**
   * The limit of an id: a safe integer >= 0, or a (sync or async) function of the id.
   * A function returning `null` means "this id has no quota": calls are allowed, nothing is counted.
   */
  limit: Resolvable<number | null, D>
  /** Cache each id's resolved limit for this long (ms). Off by default. */
  limitCacheTtlMs?: number
  /**
   * The system of record: the usage of an id when its counter is missing from the store.
   * Called once per missing counter across processes (single-flight plus a store lock).
   */
  loadUsage?: (id: string, ctx: QuotaContext<D>) => number | Promise<number>
  /** Counter lifetime from creation (ms), never re-armed. A function is evaluated per call. */
  ttlMs?: Resolvable<number | undefined, D>
  /** Fixed calendar window; each window has its own counter, reset at the window's end. */
  period?: Period
  /** The loader lock (the Go original's LockIn / MaxRetry / RetryIn). */
  lock?: { ttlMs?: number; retries?: number; retryDelayMs?: number }
  /** What `consume` does when the store fails: reject (default), allow uncounted, or refuse. */
  onStoreError?: 'throw' | 'allow' | 'deny'
  /** Replace the per-call cost (the Go original's ModifiedUsage). */
  cost?: (id: string, requested: number, ctx: QuotaContext<D>) => number | Promise<number>
  /** How long idempotency records live (ms). Default 24 h. */
  idempotencyTtlMs?: number
  /**
   * How long a reservation holds its units unless committed or released (ms): `reserve`'s
   * default, and the hold of `transact`, the middleware and `consumeAll`'s saga. A hold not
   * settled in time comes back by itself, even when the process that made it is gone.
   * Default 60,000.
   */
  holdMs?: number
  /**
   * Retries of calls that are safe to send again (an idempotency key, a commit or release)
   * when the store fails with a retryable `StoreError`: up to `attempts` more tries, none
   * started after `budgetMs`, waiting 50, 200, 500 ms... between them. `false`: never retry.
   * Default `{ attempts: 3, budgetMs: 2500 }`.
   */
  retry?: false | { attempts?: number; budgetMs?: number }
  /**
   * The quota's time source (epoch ms). Default: the store's injected clock (a memory or Keyv
   * store created with `clock`), else `Date.now`. Every time the quota derives reads it:
   * windows, `resetAt`, TTLs, idempotency record and hold lifetimes, the middleware's
   * `Retry-After` and RateLimit reset. A clock that disagrees with the store's injected one by
   * more than a second is refused (`InvalidArgumentError` naming `clock`). Quotas with a
   * `period` or `ttlMs` read and check it before every call; others read it only to report a
   * `resetAt`.
   */
  clock?: () => number
  hooks?: QuotaHooks<D>
}
