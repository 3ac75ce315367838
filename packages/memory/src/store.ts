import type { ApplyOptions, CounterSnapshot } from '@andromeda/core'
import { checkOptionKeys, InvalidArgumentError, StoreError } from '@andromeda/core'
import { checkInteger, checkKey, lockKey, optionalInteger } from '@andromeda/core/store'
import { apply } from './apply.js'
import type { MemoryCounterStore } from './counter-store.js'
import { Entries, type MemoryEvictionEvent } from './entries.js'

export type { MemoryEvictionEvent } from './entries.js'

/** Options of `createMemoryStore`. */
export interface MemoryStoreOptions {
  /**
   * Most entries kept (counters, idempotency records, locks and holds together). When full, the least
   * recently used entry is evicted and `onEvict` is told. Default 100,000.
   */
  max?: number
  /**
   * Clock for expiry, epoch ms. Default `Date.now`. Inject one to test TTLs without waiting: the
   * store exposes it as `clock`, and a quota created without a clock of its own reads it too (a
   * quota whose own clock disagrees with it is refused), so windows, `resetAt` and TTLs agree.
   */
  clock?: () => number
  /**
   * Called when a live entry is evicted because the store is full. Evicting a counter forgets
   * its usage, so it is never silent: without this option the store emits a process warning
   * (once). Expired entries leave silently.
   */
  onEvict?: (event: MemoryEvictionEvent) => void
}

const DEFAULT_MAX = 100_000
const NO_OPTIONS: ApplyOptions = Object.freeze({})

/**
 * A `CounterStore` in this process's memory, on lru-cache.
 *
 * Every call runs as one synchronous block, so it is atomic within the process
 * (`capabilities: { shared: false, atomic: 'process' }`); counts are not shared with other
 * processes. Expiry is checked on read against `clock` (no timers, so no 2^31 ms overflow: a
 * 30-day TTL is exact), and so are holds: an expired hold's units come back when its counter
 * next refuses or is read. Evicting a live counter calls `onEvict` (or warns once).
 *
 * Bad arguments reject with an `InvalidArgumentError` naming them before anything changes, by
 * the rules of the Redis and SQL stores (values safe integers >= 0, `ttlMs` >= 1, keys and
 * tokens non-empty strings). `apply` checks its ops except a single op without hold, settle or
 * idempotency options: the engine's consume and refund, which the engine checked already.
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
  const { max, clock, onEvict } = resolveOptions(options)
  const entries = new Entries(max, clock, onEvict)

  let closed = false
  /** After close() every call fails, as it would on a store whose connection is gone. */
  const checkOpen = () => {
    if (closed) throw new StoreError('the memory store is closed', { retryable: false })
  }

  // Every method body is synchronous: nothing can interleave inside one call.
  return {
    capabilities: { shared: false, atomic: 'process', canApplyTogether: () => true },
    // An injected clock is the quota's too (a quota without its own adopts it): one time source.
    ...(options.clock === undefined ? {} : { clock: options.clock }),

    // Answers synchronously (the contract allows it): the engine's hot path makes no promise
    // for the store. Failures still come back as rejected promises, as from any store.
    apply(ops, opts = NO_OPTIONS) {
      try {
        checkOpen()
        if (opts.signal !== undefined) opts.signal.throwIfAborted()
        return apply(entries, ops, opts)
      } catch (error) {
        return Promise.reject(error)
      }
    },
    ...counterMethods(entries, checkOpen),
    ...lockMethods(entries, checkOpen),

    async close() {
      closed = true
      entries.clear()
    },
  }
}

/** The options checked, with their defaults. */
function resolveOptions(options: MemoryStoreOptions): {
  max: number
  clock: () => number
  onEvict: (event: MemoryEvictionEvent) => void
} {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'must be an object')
  checkOptionKeys('', options, ['max', 'clock', 'onEvict'])
  const max = options.max === undefined ? DEFAULT_MAX : options.max
  if (!Number.isSafeInteger(max) || max < 1)
    throw new InvalidArgumentError('max', `must be a positive integer, got ${String(max)}`)
  if (options.clock !== undefined && typeof options.clock !== 'function')
    throw new InvalidArgumentError('clock', 'must be a function')
  // Checked now: a bad onEvict would otherwise only fail inside lru-cache, at the first eviction.
  if (options.onEvict !== undefined && typeof options.onEvict !== 'function')
    throw new InvalidArgumentError('onEvict', 'must be a function')
  return { max, clock: options.clock ?? Date.now, onEvict: options.onEvict ?? warnOnceOnEviction(max) }
}

/** Without `onEvict`, an eviction of a live entry is never silent: one process warning. */
function warnOnceOnEviction(max: number): (event: MemoryEvictionEvent) => void {
  let warned = false
  return (event) => {
    if (warned) return
    warned = true
    process.emitWarning(
      `@andromeda/memory evicted a live ${event.kind} (${event.key}) because the store is full (max ${max}); its usage is forgotten. Raise \`max\` or pass \`onEvict\`.`,
      { code: 'ANDROMEDA_MEMORY_EVICTION' },
    )
  }
}

/** `seed`, `get`, `set` and `delete` over the entries. */
function counterMethods(
  entries: Entries,
  checkOpen: () => void,
): Pick<MemoryCounterStore, 'seed' | 'get' | 'set' | 'delete'> {
  return {
    async seed(key, value, ttlMs, lockToken) {
      checkKey('key', key)
      checkInteger('value', value, 0)
      optionalInteger('ttlMs', ttlMs, 1)
      if (lockToken !== undefined) checkKey('lockToken', lockToken)
      checkOpen()
      if (entries.value(key) !== undefined) return false
      if (lockToken !== undefined && entries.lockHolder(lockKey(key)) !== lockToken) return false
      entries.create(key, value, ttlMs)
      return true
    },

    async get(key): Promise<CounterSnapshot | undefined> {
      checkKey('key', key)
      checkOpen()
      let value = entries.value(key)
      if (value === undefined) return undefined
      // A read gives back the counter's expired holds first, so it shows what is really in use.
      const units = entries.takeExpiredHolds(key)
      if (units > 0) {
        value = Math.max(value - units, 0)
        entries.update(key, value)
      }
      const ttlMs = entries.ttlOf(key)
      return ttlMs === undefined ? { value } : { value, ttlMs }
    },

    async set(key, value, ttlMs) {
      checkKey('key', key)
      checkInteger('value', value, 0)
      optionalInteger('ttlMs', ttlMs, 1)
      checkOpen()
      // A live counter keeps its TTL; a missing one is created with ttlMs.
      if (entries.value(key) !== undefined) entries.update(key, value)
      else entries.create(key, value, ttlMs)
    },

    async delete(key) {
      checkKey('key', key)
      checkOpen()
      // Holds live in the counter's entry: they go with it.
      entries.delete(key)
    },
  }
}

/** `acquireLock` and `releaseLock`: a lock is an entry holding its owner's token. */
function lockMethods(entries: Entries, checkOpen: () => void): Pick<MemoryCounterStore, 'acquireLock' | 'releaseLock'> {
  return {
    async acquireLock(key, token, ttlMs) {
      checkKey('key', key)
      checkKey('token', token)
      checkInteger('ttlMs', ttlMs, 1)
      checkOpen()
      const holder = entries.lockHolder(key)
      if (holder !== undefined) return holder === token
      entries.setLock(key, token, ttlMs)
      return true
    },

    async releaseLock(key, token) {
      checkKey('key', key)
      checkKey('token', token)
      checkOpen()
      if (entries.lockHolder(key) !== token) return false
      entries.delete(key)
      return true
    },
  }
}
