import type { ApplyOptions, ApplyResult, CounterOp, CounterSnapshot, CounterStore } from '@andromeda/core'
import { InvalidArgumentError, StoreError } from '@andromeda/core'
import { LRUCache } from 'lru-cache'

/** Why a live entry left the store without being deleted: only `'evict'` (the store was full). */
export interface MemoryEvictionEvent {
  key: string
  /** What was evicted: a counter, an idempotency record or a loader lock. */
  kind: 'counter' | 'record' | 'lock'
  /** The counter's value when a counter was evicted. */
  value?: number
}

/** Options of `createMemoryStore`. */
export interface MemoryStoreOptions {
  /**
   * Most entries kept (counters, idempotency records and locks together). When full, the least
   * recently used entry is evicted and `onEvict` is told. Default 100,000.
   */
  max?: number
  /** Clock for expiry, epoch ms. Default `Date.now`. Inject one to test TTLs without waiting. */
  clock?: () => number
  /**
   * Called when a live entry is evicted because the store is full. Evicting a counter forgets
   * its usage, so it is never silent: without this option the store emits a process warning
   * (once). Expired entries leave silently.
   */
  onEvict?: (event: MemoryEvictionEvent) => void
}

/**
 * A counter without a TTL. Its value is changed in place, so a consume is one lru-cache lookup
 * (`get`, which also marks it recently used) instead of three (`get`, `set`,
 * `getRemainingTTL`): the memory store's hot path. A counter with a TTL is kept as a plain
 * number, so lru-cache's own TTL tracking expires it; boxing it too would cost 32 bytes more
 * per counter than the footprint target allows.
 */
class Counter {
  constructor(public value: number) {}
}

/** Counters as a `Counter` (no TTL) or a plain number (with a TTL); records and locks as small objects. */
type Entry =
  | number
  | Counter
  | { kind: 'record'; values: number[]; ttlMs: (number | undefined)[]; recordedAt: number }
  | { kind: 'lock'; token: string }

const DEFAULT_MAX = 100_000
const NO_OPTIONS: ApplyOptions = Object.freeze({})

/**
 * A `CounterStore` in this process's memory, on lru-cache.
 *
 * Every call runs as one synchronous block, so it is atomic within the process
 * (`capabilities: { shared: false, atomic: 'process' }`); counts are not shared with other
 * processes. Expiry is checked on read against `clock` (no timers, so no 2^31 ms overflow: a
 * 30-day TTL is exact). Evicting a live counter calls `onEvict` (or warns once).
 *
 * @example
 * ```ts
 * import { createQuota } from '@andromeda/core'
 * import { createMemoryStore } from '@andromeda/memory'
 *
 * const quota = createQuota({ name: 'api', store: createMemoryStore({ max: 50_000 }), limit: 100, period: 'day' })
 * await quota.consume('user-1')
 * ```
 */
export function createMemoryStore(options: MemoryStoreOptions = {}): CounterStore {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'must be an object')
  const max = options.max === undefined ? DEFAULT_MAX : options.max
  if (!Number.isSafeInteger(max) || max < 1) throw new InvalidArgumentError('max', `must be a positive integer, got ${String(max)}`)
  if (options.clock !== undefined && typeof options.clock !== 'function') throw new InvalidArgumentError('clock', 'must be a function')
  // Checked now: a bad onEvict would otherwise only fail inside lru-cache, at the first eviction.
  if (options.onEvict !== undefined && typeof options.onEvict !== 'function') throw new InvalidArgumentError('onEvict', 'must be a function')
  const clock = options.clock ?? Date.now
  let warned = false
  const onEvict =
    options.onEvict ??
    ((event: MemoryEvictionEvent) => {
      if (warned) return
      warned = true
      process.emitWarning(
        `@andromeda/memory evicted a live ${event.kind} (${event.key}) because the store is full (max ${max}); its usage is forgotten. Raise \`max\` or pass \`onEvict\`.`,
        { code: 'ANDROMEDA_MEMORY_EVICTION' },
      )
    })

  // lru-cache keeps each entry's TTL against our clock (no timers: `ttlResolution: 0` reads the
  // clock on every check, `ttlAutopurge` stays off) and never re-arms it (`noUpdateTTL`).
  // It treats a start time of 0 as "no TTL" and an entry as stale once its age *exceeds* the
  // TTL, where Redis expires a key when its age *reaches* it. Reading our clock + 2 and starting
  // each entry at clock + 1 keeps starts non-zero for any clock >= 0 and turns lru-cache's
  // `age + 1 > ttl` into Redis' `age >= ttl`.
  const withTtl = (ttl: number) => ({ ttl, start: clock() + 1 })
  const entries: LRUCache<string, Entry> = new LRUCache<string, Entry>({
    max,
    perf: { now: () => clock() + 2 },
    ttlResolution: 0,
    noUpdateTTL: true,
    noDisposeOnSet: true,
    dispose: (entry, key, reason) => {
      // During eviction the entry is still indexed, so its remaining TTL tells live from expired.
      if (reason !== 'evict' || entries.getRemainingTTL(key) <= 0) return
      if (typeof entry === 'number') onEvict({ key, kind: 'counter', value: entry })
      else if (entry instanceof Counter) onEvict({ key, kind: 'counter', value: entry.value })
      else onEvict({ key, kind: entry.kind })
    },
  })

  /** A live counter's value; undefined when missing or expired. */
  const counter = (key: string): number | undefined => {
    const entry = entries.get(key)
    return typeof entry === 'number' ? entry : entry instanceof Counter ? entry.value : undefined
  }

  /** Create a counter: boxed without a TTL, a number with one (see `Counter`). */
  const create = (key: string, value: number, ttlMs: number | undefined): void => {
    if (ttlMs === undefined) entries.set(key, new Counter(value))
    else entries.set(key, value, withTtl(ttlMs))
  }

  /** Change a live counter's value; it keeps its lifetime. */
  const update = (key: string, value: number): void => {
    const entry = entries.peek(key)
    if (entry instanceof Counter) entry.value = value
    else entries.set(key, value)
  }

  /** Remaining lifetime in ms (at least 1 while live); undefined when the entry never expires. */
  const ttlOf = (key: string): number | undefined => {
    if (!entries.has(key)) return undefined
    return liveTtlOf(key)
  }

  /** `ttlOf` for a key known to be live (one lookup fewer). */
  const liveTtlOf = (key: string): number | undefined => {
    const remaining = entries.getRemainingTTL(key)
    return remaining === Number.POSITIVE_INFINITY ? undefined : remaining + 1
  }

  function refuse(ops: readonly CounterOp[], index: number, reason: 'limit' | 'floor' | 'missing'): ApplyResult {
    return { ok: false, index, reason, values: ops.map((op) => counter(op.key)), ttlMs: ops.map((op) => ttlOf(op.key)) }
  }

  /**
   * One op, no idempotency record: a consume or a refund, the hot path. The same rules as
   * `applyNow`, without its per-op bookkeeping.
   */
  function applyOne(op: CounterOp): ApplyResult {
    const key = op.key
    const delta = op.delta
    const entry = entries.get(key)
    if (entry instanceof Counter) {
      // The hot path: a live counter without a TTL, changed in place.
      const next = entry.value + delta
      if (delta > 0 && ((op.max !== undefined && next > op.max) || !Number.isSafeInteger(next))) {
        return { ok: false, index: 0, reason: 'limit', values: [entry.value], ttlMs: [undefined] }
      }
      if (delta < 0 && op.min !== undefined && next < op.min) return { ok: false, index: 0, reason: 'floor', values: [entry.value], ttlMs: [undefined] }
      entry.value = next
      return { ok: true, values: [next], ttlMs: [undefined] }
    }
    const current = typeof entry === 'number' ? entry : undefined
    if (current === undefined && op.ifMissing === 'report') return { ok: false, index: 0, reason: 'missing', values: [undefined], ttlMs: [undefined] }
    const next = (current ?? 0) + delta
    if (delta > 0 && ((op.max !== undefined && next > op.max) || !Number.isSafeInteger(next))) {
      return { ok: false, index: 0, reason: 'limit', values: [current], ttlMs: [current === undefined ? undefined : liveTtlOf(key)] }
    }
    if (delta < 0 && op.min !== undefined && next < op.min) {
      return { ok: false, index: 0, reason: 'floor', values: [current], ttlMs: [current === undefined ? undefined : liveTtlOf(key)] }
    }
    if (current === undefined) {
      if (delta === 0) return { ok: true, values: [0], ttlMs: [undefined] }
      // A new counter lives exactly its ttlMs from now.
      create(key, next, op.ttlMs)
      return { ok: true, values: [next], ttlMs: [op.ttlMs] }
    }
    if (delta !== 0) entries.set(key, next)
    return { ok: true, values: [next], ttlMs: [liveTtlOf(key)] }
  }

  function applyNow(ops: readonly CounterOp[], opts: ApplyOptions): ApplyResult {
    if (opts.idempotencyKey !== undefined) {
      const record = entries.get(opts.idempotencyKey)
      if (typeof record === 'object' && !(record instanceof Counter) && record.kind === 'record') {
        // Lifetimes as seen now, so a replay reports the reset time the recorded call did.
        const elapsed = clock() - record.recordedAt
        const ttlMs = record.ttlMs.map((ttl) => (ttl === undefined ? undefined : ttl - elapsed))
        return { ok: true, values: [...record.values], ttlMs, replayed: true }
      }
    }
    // First check every op against the running values (ops on one key see each other), and
    // only then write, so a refusal writes nothing. A counter to report missing is reported
    // only when no other op is refused: loading it could not make the call fit.
    const values: number[] = new Array(ops.length)
    const existed: boolean[] = new Array(ops.length)
    const unknown = new Set<string>()
    let missing = -1
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!
      if (unknown.has(op.key)) continue
      let earlier = -1
      for (let j = i - 1; j >= 0; j--) {
        if (ops[j]!.key === op.key) {
          earlier = j
          break
        }
      }
      const current = earlier >= 0 ? values[earlier] : counter(op.key)
      // An earlier op on this key that did not write (delta 0) did not create it either.
      const exists = earlier >= 0 ? existed[earlier]! || ops[earlier]!.delta !== 0 : current !== undefined
      if (!exists && op.ifMissing === 'report') {
        if (missing < 0) missing = i
        unknown.add(op.key)
        continue
      }
      const base = current ?? 0
      const next = base + op.delta
      if (op.delta > 0 && ((op.max !== undefined && next > op.max) || !Number.isSafeInteger(next))) return refuse(ops, i, 'limit')
      if (op.delta < 0 && op.min !== undefined && next < op.min) return refuse(ops, i, 'floor')
      values[i] = next
      existed[i] = exists
    }
    if (missing >= 0) return refuse(ops, missing, 'missing')
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!
      if (op.delta === 0) continue
      // A new counter gets its TTL; an existing one keeps its own.
      if (existed[i]) update(op.key, values[i]!)
      else create(op.key, values[i]!, op.ttlMs)
    }
    // Report each counter's value after the whole call (the last op on its key wins).
    for (let i = ops.length - 2; i >= 0; i--) {
      for (let j = ops.length - 1; j > i; j--) {
        if (ops[j]!.key === ops[i]!.key) {
          values[i] = values[j]!
          break
        }
      }
    }
    const ttlMs = ops.map((op) => ttlOf(op.key))
    if (opts.clearIdempotencyKey !== undefined) entries.delete(opts.clearIdempotencyKey)
    if (opts.idempotencyKey !== undefined) {
      entries.set(opts.idempotencyKey, { kind: 'record', values: [...values], ttlMs, recordedAt: clock() }, withTtl(opts.idempotencyTtlMs ?? 86_400_000))
    }
    return { ok: true, values, ttlMs }
  }

  let closed = false
  /** After close() every call fails, as it would on a store whose connection is gone. */
  const checkOpen = () => {
    if (closed) throw new StoreError('the memory store is closed', { retryable: false })
  }

  // Every method body is synchronous: nothing can interleave inside one call.
  return {
    capabilities: { shared: false, atomic: 'process', canApplyTogether: () => true },

    // Answers synchronously (the contract allows it): the engine's hot path makes no promise
    // for the store. Failures still come back as rejected promises, as from any store.
    apply(ops, opts = NO_OPTIONS) {
      try {
        checkOpen()
        if (opts.signal !== undefined) opts.signal.throwIfAborted()
        if (ops.length === 1 && opts.idempotencyKey === undefined && opts.clearIdempotencyKey === undefined) return applyOne(ops[0]!)
        return applyNow(ops, opts)
      } catch (error) {
        return Promise.reject(error)
      }
    },

    async seed(key, value, ttlMs) {
      checkOpen()
      if (counter(key) !== undefined) return false
      create(key, value, ttlMs)
      return true
    },

    async get(key): Promise<CounterSnapshot | undefined> {
      checkOpen()
      const value = counter(key)
      if (value === undefined) return undefined
      const ttlMs = ttlOf(key)
      return ttlMs === undefined ? { value } : { value, ttlMs }
    },

    async set(key, value, ttlMs) {
      checkOpen()
      // A live counter keeps its TTL (noUpdateTTL); a missing one is created with ttlMs.
      if (counter(key) !== undefined) update(key, value)
      else create(key, value, ttlMs)
    },

    async delete(key) {
      checkOpen()
      entries.delete(key)
    },

    async acquireLock(key, token, ttlMs) {
      checkOpen()
      const lock = entries.get(key)
      if (typeof lock === 'object' && !(lock instanceof Counter) && lock.kind === 'lock') return lock.token === token
      entries.set(key, { kind: 'lock', token }, withTtl(ttlMs))
      return true
    },

    async releaseLock(key, token) {
      checkOpen()
      const lock = entries.get(key)
      if (typeof lock !== 'object' || lock instanceof Counter || lock.kind !== 'lock' || lock.token !== token) return false
      entries.delete(key)
      return true
    },

    async close() {
      closed = true
      entries.clear()
    },
  }
}
