import type { ApplyOptions, ApplyResult, CounterOp, CounterSnapshot, CounterStore } from '@andromeda/core'
import { InvalidArgumentError, StoreError } from '@andromeda/core'
import { LRUCache } from 'lru-cache'
import type { MemoryCounterStore } from './counter-store.js'

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

/** Counters are stored as plain numbers (lean); records and locks as small objects. */
type Entry =
  | number
  | { kind: 'record'; values: number[]; ttlMs: (number | undefined)[]; recordedAt: number }
  | { kind: 'lock'; token: string }

const DEFAULT_MAX = 100_000

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
export function createMemoryStore(options: MemoryStoreOptions = {}): MemoryCounterStore {
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
      else onEvict({ key, kind: entry.kind })
    },
  })

  /** A live counter's value; undefined when missing or expired. */
  const counter = (key: string): number | undefined => {
    const entry = entries.get(key)
    return typeof entry === 'number' ? entry : undefined
  }

  /** Remaining lifetime in ms (at least 1 while live); undefined when the entry never expires. */
  const ttlOf = (key: string): number | undefined => {
    if (!entries.has(key)) return undefined
    const remaining = entries.getRemainingTTL(key)
    return remaining === Number.POSITIVE_INFINITY ? undefined : remaining + 1
  }

  function refuse(ops: readonly CounterOp[], index: number, reason: 'limit' | 'floor' | 'missing'): ApplyResult {
    return { ok: false, index, reason, values: ops.map((op) => counter(op.key)), ttlMs: ops.map((op) => ttlOf(op.key)) }
  }

  function applyNow(ops: readonly CounterOp[], opts: ApplyOptions): ApplyResult {
    if (opts.idempotencyKey !== undefined) {
      const record = entries.get(opts.idempotencyKey)
      if (typeof record === 'object' && record.kind === 'record') {
        // Lifetimes as seen now, so a replay reports the reset time the recorded call did.
        const elapsed = clock() - record.recordedAt
        const ttlMs = record.ttlMs.map((ttl) => (ttl === undefined ? undefined : ttl - elapsed))
        return { ok: true, values: [...record.values], ttlMs, replayed: true }
      }
    }
    // First check every op against the running values (ops on one key see each other), and
    // only then write, so a refusal writes nothing.
    const values: number[] = new Array(ops.length)
    const existed: boolean[] = new Array(ops.length)
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!
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
      if (!exists && op.ifMissing === 'report') return refuse(ops, i, 'missing')
      const base = current ?? 0
      const next = base + op.delta
      if (op.delta > 0 && ((op.max !== undefined && next > op.max) || !Number.isSafeInteger(next))) return refuse(ops, i, 'limit')
      if (op.delta < 0 && op.min !== undefined && next < op.min) return refuse(ops, i, 'floor')
      values[i] = next
      existed[i] = exists
    }
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i]!
      if (op.delta === 0) continue
      // A new counter gets its TTL; an existing one keeps its own (noUpdateTTL).
      entries.set(op.key, values[i]!, !existed[i] && op.ttlMs !== undefined ? withTtl(op.ttlMs) : undefined)
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

    async apply(ops, opts = {}) {
      checkOpen()
      opts.signal?.throwIfAborted()
      return applyNow(ops, opts)
    },

    applySync(ops, opts = {}) {
      checkOpen()
      opts.signal?.throwIfAborted()
      return applyNow(ops, opts)
    },

    async seed(key, value, ttlMs) {
      checkOpen()
      if (counter(key) !== undefined) return false
      entries.set(key, value, ttlMs === undefined ? undefined : withTtl(ttlMs))
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
      const live = counter(key) !== undefined
      entries.set(key, value, !live && ttlMs !== undefined ? withTtl(ttlMs) : undefined)
    },

    async delete(key) {
      checkOpen()
      entries.delete(key)
    },

    async acquireLock(key, token, ttlMs) {
      checkOpen()
      const lock = entries.get(key)
      if (typeof lock === 'object' && lock.kind === 'lock') return lock.token === token
      entries.set(key, { kind: 'lock', token }, withTtl(ttlMs))
      return true
    },

    async releaseLock(key, token) {
      checkOpen()
      const lock = entries.get(key)
      if (typeof lock !== 'object' || lock.kind !== 'lock' || lock.token !== token) return false
      entries.delete(key)
      return true
    },

    async close() {
      closed = true
      entries.clear()
    },
  }
}
