/**
 * The `CounterStore` contract: the only thing a storage adapter implements.
 *
 * A store owns atomicity; the engine owns policy (limits, loading, periods, events). Keys are
 * built by the engine (see `keys.ts`): every key of one quota id shares one Redis hash tag, so
 * a store on a Redis Cluster can keep them in one slot. Values are integers in
 * `[0, Number.MAX_SAFE_INTEGER]`; times are milliseconds.
 *
 * Run `@andromeda/store-test-suite` against an adapter to check it keeps this contract.
 */

/** What a store guarantees; the engine and the middleware read it to choose a path or warn. */
export interface StoreCapabilities {
  /** Counts are visible to other processes (Redis: true; the memory store: false). */
  readonly shared: boolean
  /** `apply()` is atomic against every process (`'global'`) or only within this one (`'process'`). */
  readonly atomic: 'global' | 'process'
  /** True when one atomic `apply()` can cover all these keys (on a Redis Cluster: one slot). */
  canApplyTogether(keys: readonly string[]): boolean
}

/**
 * One bounded change to one counter.
 *
 * - `delta > 0` is refused with `'limit'` when `value + delta > max`.
 * - `delta < 0` is refused with `'floor'` when `value + delta < min`.
 * - `delta === 0` never writes: it reads the value (0 for a missing counter with
 *   `ifMissing: 'create'`) and never creates the counter.
 * - A missing counter is treated as 0 and created (`'create'`, with `ttlMs` as its lifetime),
 *   or reported so the engine can load it first (`'report'`). A call is reported `'missing'`
 *   only when none of its other ops is refused: when another counter is over its bound,
 *   loading could not make the call fit, so the refusal is the answer (and no load runs).
 * - `ttlMs` applies only when the counter is created; it is never re-armed.
 * - Several ops on the same key are applied in order, each seeing the previous one.
 *
 * Holds (reservations): an op with `hold` (and `delta > 0`) holds its units under `hold.id`:
 * they count toward the value like any others, and unless settled they come back by
 * themselves once `hold.holdMs` has passed on the store's clock, even if the process that made
 * the hold is gone. An expired hold is given back lazily, only where it matters: before an op
 * on its counter is refused for `'limit'` (then the op is checked again) and before a `get`.
 * A hold lives in the counter's hash-tag group (`<key>:holds...`) and with its lifetime.
 * An op with `settle` (and `delta === 0`) settles hold `settle.id` of its counter: it keeps
 * `settle.keep` units (at most the held ones) and gives the rest back. It is refused with
 * `'hold'` when the hold is gone (expired: its units are back already); settling a hold again
 * within its `holdMs` answers ok and changes nothing (`replayed: true`).
 *
 * Give-backs and loads: an op that gives units back (`delta < 0`, or a `settle`) to a missing
 * counter deletes the counter's loader lock (`lockKey(key)`, `<key>:lock`) in the same atomic
 * step, whatever the call's answer. A load in progress may have read the system of record
 * before that give-back (still counting the units it gives back); its `seed` with its lock
 * token is then refused and it reads again, so a reload never restores units that went back.
 */
export interface CounterOp {
  key: string
  delta: number
  max?: number
  min?: number
  ttlMs?: number | undefined
  ifMissing: 'create' | 'report'
  /** Hold this op's units under `id` (unique per counter) for `holdMs` (ms); `delta` must be > 0. */
  hold?: { id: string; holdMs: number } | undefined
  /** Settle hold `id` of this counter, keeping `keep` of its units; `delta` must be 0. */
  settle?: { id: string; keep: number } | undefined
}

/** Options of one `apply()` call. */
export interface ApplyOptions {
  /**
   * Key of the idempotency record, built by the engine in the hash-tag group of `ops[0].key`.
   * When a live record exists the store changes nothing and returns the recorded result with
   * `replayed: true`, each recorded `ttlMs` less the time since it was recorded (possibly <= 0),
   * so the replay reports the reset time the recorded call did; when the call is granted the
   * store records its result, in the same atomic step, for `idempotencyTtlMs`. A refused call
   * records nothing.
   */
  idempotencyKey?: string
  /** Lifetime of the idempotency record (ms). Required with `idempotencyKey`. */
  idempotencyTtlMs?: number
  /**
   * Idempotency record to delete in the same atomic step, used when the engine gives back the
   * units of an idempotent call (so a retry of that call is evaluated afresh).
   */
  clearIdempotencyKey?: string
  /** Abort before the call is sent. A call already sent may still be applied. */
  signal?: AbortSignal
}

/**
 * Result of `apply()`. On success `values` holds each counter's value after the call and
 * `ttlMs` each counter's remaining lifetime (undefined: no expiry). On refusal nothing was
 * changed; `index` is the first refused op, `values` the current value of every op's
 * counter (undefined: missing) and `ttlMs`, when the store can tell cheaply, their lifetimes
 * (so a refusal can carry a reset time).
 */
export type ApplyResult =
  | { ok: true; values: number[]; ttlMs?: (number | undefined)[]; replayed?: boolean }
  | {
      ok: false
      index: number
      /** `'hold'`: the hold an op settles is gone (expired, its units given back). */
      reason: 'limit' | 'floor' | 'missing' | 'hold'
      values: (number | undefined)[]
      ttlMs?: (number | undefined)[]
    }

/** A counter as read by `get()`: its value and remaining lifetime in ms (undefined: no expiry). */
export interface CounterSnapshot {
  value: number
  ttlMs?: number | undefined
}

/**
 * Storage for quota counters. Every method may reject with a `StoreError` (see `errors.ts`),
 * and must do so within a bounded time when the backend is unreachable.
 *
 * @example
 * ```ts
 * import type { CounterStore } from '@andromeda/core'
 * const store: CounterStore = createMemoryStore()
 * await store.apply([{ key: 'k', delta: 1, max: 10, ifMissing: 'create' }])
 * // -> { ok: true, values: [1], ttlMs: [undefined] }
 * ```
 */
export interface CounterStore {
  readonly capabilities: StoreCapabilities
  /**
   * The clock the store reads for expiry (epoch ms), present only when the user injected one
   * (the memory store's and the Keyv process store's `clock` option). A quota without a clock
   * of its own adopts it, so windows, reset times and Retry-After agree with the store's TTLs;
   * a quota whose own clock disagrees with it is refused (`createQuota` throws).
   */
  readonly clock?: () => number
  /**
   * Apply all ops or none, atomically (see `CounterOp`).
   *
   * Returns the result itself or a promise of it: a store that needs no I/O (memory) answers
   * synchronously, so the engine's hot path makes no promise for the store; every caller goes
   * through this one method, so a wrapper (metrics, fault injection) sees every call. Failures
   * reject (or, from a synchronous store, throw); the engine treats both alike.
   */
  apply(ops: readonly CounterOp[], options?: ApplyOptions): ApplyResult | Promise<ApplyResult>
  /**
   * Create the counter with `value` only if it is absent (set-if-absent). True if it was set.
   * With `lockToken`, only while the counter's loader lock (`lockKey(key)`) is held by that
   * token: a give-back to the missing counter deletes the lock (see `CounterOp`), and the
   * usage a load read before it may count units that went back.
   */
  seed(key: string, value: number, ttlMs?: number, lockToken?: string): Promise<boolean>
  /** Read a counter (after giving back its expired holds); undefined when it is missing or expired. */
  get(key: string): Promise<CounterSnapshot | undefined>
  /** Overwrite a counter's value. A live counter keeps its lifetime; a new one gets `ttlMs`. */
  set(key: string, value: number, ttlMs?: number): Promise<void>
  /** Remove a counter (with its holds) or an idempotency record (missing is fine). */
  delete(key: string): Promise<void>
  /** Take the lock `key` for `ttlMs` if nobody holds it. True when this token now holds it. */
  acquireLock(key: string, token: string, ttlMs: number): Promise<boolean>
  /** Release the lock only if `token` holds it. True when it was released. */
  releaseLock(key: string, token: string): Promise<boolean>
  /**
   * Release the store's own resources (never a client the user handed in). Safe to call twice.
   * Afterwards every method rejects with a `StoreError`.
   */
  close?(): Promise<void>
}
