import type { ApplyOptions, ApplyResult, CounterOp, CounterSnapshot, CounterStore } from '@andromeda/core'
import { InvalidArgumentError } from '@andromeda/core'
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

type Entry =
  | { kind: 'counter'; value: number; expiresAt: number | undefined }
  | { kind: 'record'; values: number[]; ttlMs: (number | undefined)[]; expiresAt: number }
  | { kind: 'lock'; token: string; expiresAt: number }

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
export function createMemoryStore(options: MemoryStoreOptions = {}): CounterStore {
  const max = options.max ?? DEFAULT_MAX
  if (!Number.isSafeInteger(max) || max < 1) throw new InvalidArgumentError('max', `must be a positive integer, got ${String(max)}`)
  if (options.clock !== undefined && typeof options.clock !== 'function') throw new InvalidArgumentError('clock', 'must be a function')
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

  const entries = new LRUCache<string, Entry>({
    max,
    dispose: (entry, key, reason) => {
      if (reason !== 'evict' || isExpired(entry)) return
      onEvict({ key, kind: entry.kind, ...(entry.kind === 'counter' ? { value: entry.value } : {}) })
    },
  })

  const isExpired = (entry: Entry) => entry.expiresAt !== undefined && entry.expiresAt <= clock()

  /** The live entry of a kind, dropping it if it expired. */
  function read<K extends Entry['kind']>(key: string, kind: K): Extract<Entry, { kind: K }> | undefined {
    const entry = entries.get(key)
    if (!entry) return undefined
    if (isExpired(entry)) {
      entries.delete(key)
      return undefined
    }
    return entry.kind === kind ? (entry as Extract<Entry, { kind: K }>) : undefined
  }

  const ttlOf = (entry: { expiresAt: number | undefined }) =>
    entry.expiresAt === undefined ? undefined : Math.max(entry.expiresAt - clock(), 1)

  function applyNow(ops: readonly CounterOp[], opts: ApplyOptions): ApplyResult {
    if (opts.idempotencyKey !== undefined) {
      const record = read(opts.idempotencyKey, 'record')
      if (record) return { ok: true, values: [...record.values], ttlMs: [...record.ttlMs], replayed: true }
    }
    // Work on a scratch copy so several ops on one key see each other, and a refusal writes nothing.
    const scratch = new Map<string, { value: number; expiresAt: number | undefined; exists: boolean }>()
    const current = (key: string) => {
      let state = scratch.get(key)
      if (!state) {
        const entry = read(key, 'counter')
        state = entry ? { value: entry.value, expiresAt: entry.expiresAt, exists: true } : { value: 0, expiresAt: undefined, exists: false }
        scratch.set(key, state)
      }
      return state
    }
    const refuse = (index: number, reason: 'limit' | 'floor' | 'missing'): ApplyResult => {
      const values = ops.map((op) => read(op.key, 'counter')?.value)
      const ttlMs = ops.map((op) => {
        const entry = read(op.key, 'counter')
        return entry ? ttlOf(entry) : undefined
      })
      return { ok: false, index, reason, values, ttlMs }
    }
    const now = clock()
    for (const [index, op] of ops.entries()) {
      const state = current(op.key)
      if (!state.exists && op.ifMissing === 'report') return refuse(index, 'missing')
      const next = state.value + op.delta
      if (op.delta > 0 && ((op.max !== undefined && next > op.max) || !Number.isSafeInteger(next))) return refuse(index, 'limit')
      if (op.delta < 0 && op.min !== undefined && next < op.min) return refuse(index, 'floor')
      if (op.delta === 0) continue
      if (!state.exists) {
        state.exists = true
        state.expiresAt = op.ttlMs === undefined ? undefined : now + op.ttlMs
      }
      state.value = next
    }
    for (const op of ops) {
      const state = scratch.get(op.key)!
      if (state.exists && op.delta !== 0) entries.set(op.key, { kind: 'counter', value: state.value, expiresAt: state.expiresAt })
    }
    const values = ops.map((op) => scratch.get(op.key)!.value)
    const ttlMs = ops.map((op) => ttlOf(scratch.get(op.key)!))
    if (opts.clearIdempotencyKey !== undefined) entries.delete(opts.clearIdempotencyKey)
    if (opts.idempotencyKey !== undefined) {
      const lifetime = opts.idempotencyTtlMs ?? 86_400_000
      entries.set(opts.idempotencyKey, { kind: 'record', values, ttlMs, expiresAt: now + lifetime })
    }
    return { ok: true, values, ttlMs }
  }

  // Every method body is synchronous: nothing can interleave inside one call.
  return {
    capabilities: { shared: false, atomic: 'process', canApplyTogether: () => true },

    async apply(ops, opts = {}) {
      opts.signal?.throwIfAborted()
      return applyNow(ops, opts)
    },

    async seed(key, value, ttlMs) {
      if (read(key, 'counter')) return false
      entries.set(key, { kind: 'counter', value, expiresAt: ttlMs === undefined ? undefined : clock() + ttlMs })
      return true
    },

    async get(key): Promise<CounterSnapshot | undefined> {
      const entry = read(key, 'counter')
      if (!entry) return undefined
      const ttlMs = ttlOf(entry)
      return ttlMs === undefined ? { value: entry.value } : { value: entry.value, ttlMs }
    },

    async set(key, value, ttlMs) {
      const entry = read(key, 'counter')
      const expiresAt = entry ? entry.expiresAt : ttlMs === undefined ? undefined : clock() + ttlMs
      entries.set(key, { kind: 'counter', value, expiresAt })
    },

    async delete(key) {
      entries.delete(key)
    },

    async acquireLock(key, token, ttlMs) {
      const lock = read(key, 'lock')
      if (lock) return lock.token === token
      entries.set(key, { kind: 'lock', token, expiresAt: clock() + ttlMs })
      return true
    },

    async releaseLock(key, token) {
      const lock = read(key, 'lock')
      if (!lock || lock.token !== token) return false
      entries.delete(key)
      return true
    },

    async close() {
      entries.clear()
    },
  }
}
