import { checkOptionKeys, InvalidArgumentError } from '@andromeda/core'
import type Keyv from 'keyv'
import { type AdapterLike, createKeyMapper, type KeyvLike, minKeyLength } from './backend.js'
import type { KeyvCounterStore } from './counter-store.js'
import { createProcessStore } from './process-store.js'
import { createKeyvRedisPath, createKeyvValkeyPath, isKeyvRedis, isKeyvValkey } from './redis-path.js'
import { createKeyvSqlPath, type KeyvSqlLike, sqlDialectOf } from './sql-path.js'

/** Options of `createKeyvStore`. */
export interface KeyvStoreOptions {
  /**
   * The Keyv instance to keep counters in (keyv v5). Its namespace prefixes every key. The store
   * never closes or disconnects it, and never changes its settings.
   */
  keyv: Keyv | KeyvLike
  /**
   * Upper bound, in ms, of the backend work of one call: past it the call rejects with a
   * `StoreError`. On @keyv/redis it is `@andromeda/redis`'s `commandTimeoutMs` (and bounds the
   * connection too); on @keyv/postgres and @keyv/mysql the database refuses to apply a call
   * after its deadline, so a call reported as timed out is never applied later. At most
   * 2^31 - 1. Default 2000.
   */
  commandTimeoutMs?: number
  /**
   * Process-atomic path only: how long, in ms, a call may wait for another call of this process
   * on the same key before it rejects with a retryable `StoreError`. A timer: at most 2^31 - 1
   * (larger is refused with an `InvalidArgumentError`). Default 10,000.
   */
  lockWaitTimeoutMs?: number
  /**
   * Process-atomic path only: whether other processes can see these counters. Detected by
   * default: false for Keyv's default in-memory `Map` (and other in-process caches), true for
   * any other adapter. The engine warns once when a shared store is only process-atomic.
   */
  shared?: boolean
  /**
   * Process-atomic path only: longest storage key (namespace included) in UTF-16 units. Longer
   * keys are stored under a shortened key ending with their SHA-256, so 10 kB ids fit a
   * `VARCHAR(255)` key column. Default 255, the key size of @keyv/postgres, @keyv/mysql and
   * @keyv/sqlite; pass `Infinity` for no limit.
   */
  maxKeyLength?: number
  /**
   * Process-atomic path only: clock for expiry, epoch ms. Default `Date.now`. An injected clock
   * is exposed as the store's `clock`: a quota created without one of its own reads it too (a
   * quota whose own clock disagrees with it is refused), so windows and TTLs agree.
   */
  clock?: () => number
  /**
   * SQL path only (@keyv/postgres, @keyv/mysql): the table the counters live in, in the
   * adapter's schema or database. 1 to 48 letters, digits or `_`, not starting with a digit.
   * Default `'andromeda_counters'`.
   */
  table?: string
  /**
   * SQL path only: create the table and its routines on first use when they are missing
   * (`CREATE ... IF NOT EXISTS`, safe from many processes at once). Pass `false` when a
   * migration creates them (`keyvSqlMigration`) and the application's database user may not.
   * Default `true`.
   */
  createTable?: boolean
}

const DEFAULT_COMMAND_TIMEOUT_MS = 2_000
const DEFAULT_LOCK_WAIT_TIMEOUT_MS = 10_000
const DEFAULT_MAX_KEY_LENGTH = 255
/** Adapters that keep their data in this process's memory (by constructor name). */
const IN_PROCESS_ADAPTERS = new Set(['Map', 'BigMap', 'CacheableMemory', 'KeyvCacheableMemory', 'LRUCache', 'QuickLRU'])

/** Longest delay a Node timer takes as given; longer ones fire at once. */
const MAX_TIMER_MS = 2_147_483_647

function positiveInteger(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > MAX_TIMER_MS) {
    throw new InvalidArgumentError(name, `must be a positive integer (ms) up to 2^31 - 1, got ${String(value)}`)
  }
  return value
}

/** True when the adapter keeps data in this process only (Keyv's default `Map` and similar). */
function isInProcess(adapter: object): boolean {
  return adapter instanceof Map || IN_PROCESS_ADAPTERS.has(adapter.constructor?.name ?? '')
}

/**
 * A `CounterStore` on a Keyv instance.
 *
 * - **@keyv/redis**: counters go through the adapter's own connected node-redis client with the
 *   Lua scripts of `@andromeda/redis`, as raw integer keys under the Keyv namespace
 *   (`<namespace>::<key>`, never Keyv's JSON wrapper). Every call is one atomic script:
 *   `capabilities: { shared: true, atomic: 'global' }`.
 * - **@keyv/postgres, @keyv/mysql**: counters live in a table of the store's own (`table`), with
 *   binary keys, changed only through functions / procedures it creates there (`createTable`);
 *   each call is one routine call, one transaction, over a pool the store opens with the
 *   adapter's connection options (`pg` / `mysql2`, optional peer dependencies) and ends in
 *   `close()`: `capabilities: { shared: true, atomic: 'global' }`. See `keyvSqlMigration`.
 * - **Any other adapter** (the default `Map`, @keyv/sqlite, ...): each counter is
 *   a small record (`{ type, value, expiresAt }`) in Keyv's `{ value, expires }` wrapper, expiry
 *   checked on read; its holds are one record next to it (`<key>:holds`). Calls run under a per-key async mutex (several keys taken together, in one
 *   step), so they are atomic within this process only: `atomic: 'process'`, and `shared` true
 *   unless the adapter lives in this process. Keyv has no compare-and-set, so two processes on one
 *   database can oversell; the engine warns once when such a store backs a quota.
 *
 * Failures: adapter calls are made directly (Keyv's own `get` turns an adapter error into a miss,
 * which would read as "counter missing"), each call is bounded by `commandTimeoutMs`, a `set`
 * answering `false` or an `error` event from Keyv during a call fails it, and every failure
 * rejects with a `StoreError`; nothing unsaved is reported as done.
 *
 * @param options - `keyv` (required) and the options of `KeyvStoreOptions`.
 * @returns a `KeyvCounterStore`; `close()` detaches it (and ends the SQL path's own pool) and never
 *   disconnects your Keyv.
 * @throws InvalidArgumentError when `keyv` is not a Keyv instance, an option is out of range, or
 *   `table` (or the @keyv/postgres schema) is not a plain identifier.
 *   Methods reject with `StoreError` (`retryable: true` only when nothing was written), and with
 *   `InvalidArgumentError` for a bad argument, before anything is read or written.
 *
 * @example
 * ```ts
 * import Keyv from 'keyv'
 * import KeyvRedis from '@keyv/redis'
 * import { createQuota } from '@andromeda/core'
 * import { createKeyvStore } from '@andromeda/keyv'
 *
 * const keyv = new Keyv({ store: new KeyvRedis('redis://localhost:6379'), namespace: 'shop' })
 * const vouchers = createQuota({ name: 'voucher', store: createKeyvStore({ keyv }), limit: 100 })
 * const { allowed } = await vouchers.consume('SUMMER24')
 * ```
 */
export function createKeyvStore(options: KeyvStoreOptions): KeyvCounterStore {
  const { keyv, adapter, commandTimeoutMs, lockWaitTimeoutMs } = checkStoreOptions(options)
  if (isKeyvRedis(adapter)) return createKeyvRedisPath(adapter, commandTimeoutMs)
  if (isKeyvValkey(adapter)) return createKeyvValkeyPath(adapter, keyv.namespace, commandTimeoutMs)

  const namespace = keyv.namespace
  const prefix = namespace && keyv.useKeyPrefix !== false ? `${namespace}:` : ''
  const dialect = sqlDialectOf(adapter)
  if (dialect) {
    return createKeyvSqlPath(adapter as KeyvSqlLike, dialect, {
      prefix,
      commandTimeoutMs,
      table: options.table,
      createTable: options.createTable,
    })
  }
  return createKeyvProcessPath(keyv, adapter as AdapterLike, prefix, options, { commandTimeoutMs, lockWaitTimeoutMs })
}

/** The options every path shares, checked: the Keyv instance, its adapter and the two timeouts. */
function checkStoreOptions(options: KeyvStoreOptions) {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'must be an object')
  checkOptionKeys('', options, [
    'keyv',
    'commandTimeoutMs',
    'lockWaitTimeoutMs',
    'shared',
    'maxKeyLength',
    'clock',
    'table',
    'createTable',
  ])
  const keyv = options.keyv as KeyvLike
  const adapter = (keyv as { store?: unknown } | undefined)?.store
  if (typeof adapter !== 'object' || adapter === null || typeof (adapter as AdapterLike).get !== 'function') {
    throw new InvalidArgumentError('keyv', 'must be a Keyv instance (keyv v5) with a storage adapter')
  }
  const commandTimeoutMs = positiveInteger('commandTimeoutMs', options.commandTimeoutMs, DEFAULT_COMMAND_TIMEOUT_MS)
  const lockWaitTimeoutMs = positiveInteger(
    'lockWaitTimeoutMs',
    options.lockWaitTimeoutMs,
    DEFAULT_LOCK_WAIT_TIMEOUT_MS,
  )
  if (options.shared !== undefined && typeof options.shared !== 'boolean')
    throw new InvalidArgumentError('shared', 'must be a boolean')
  if (options.clock !== undefined && typeof options.clock !== 'function')
    throw new InvalidArgumentError('clock', 'must be a function')
  return { keyv, adapter, commandTimeoutMs, lockWaitTimeoutMs }
}

/** The process-atomic path, for any other adapter: keys mapped to `maxKeyLength`, Keyv's errors failing the calls in flight. */
function createKeyvProcessPath(
  keyv: KeyvLike,
  adapter: AdapterLike,
  prefix: string,
  options: KeyvStoreOptions,
  timeouts: { commandTimeoutMs: number; lockWaitTimeoutMs: number },
): KeyvCounterStore {
  const maxKeyLength = options.maxKeyLength ?? DEFAULT_MAX_KEY_LENGTH
  if (
    maxKeyLength !== Number.POSITIVE_INFINITY &&
    (!Number.isSafeInteger(maxKeyLength) || maxKeyLength < minKeyLength(prefix))
  ) {
    throw new InvalidArgumentError(
      'maxKeyLength',
      `must be Infinity or an integer >= ${minKeyLength(prefix)} (room for the namespace and a hash)`,
    )
  }

  // Keyv re-emits its adapter's errors; one listener fails every adapter call in flight.
  const inFlight = new Set<(error: unknown) => void>()
  const onError = (error: unknown) => {
    for (const fail of [...inFlight]) fail(error)
  }
  keyv.on?.('error', onError)

  return createProcessStore({
    adapter,
    storageKey: createKeyMapper(prefix, maxKeyLength),
    shared: options.shared ?? !isInProcess(adapter),
    clock: options.clock ?? Date.now,
    injectedClock: options.clock !== undefined,
    ...timeouts,
    watch: (fail) => {
      inFlight.add(fail)
      return () => inFlight.delete(fail)
    },
    onClose: () => keyv.off?.('error', onError),
  })
}
