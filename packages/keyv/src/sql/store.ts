import type { ApplyOptions, ApplyResult, CounterOp, CounterSnapshot } from '@andromeda/core'
import type { KeyvCounterStore } from '../counter-store.js'
import { acquireLockRoutine, applyArgs, releaseLockRoutine, type StorageKey, seedRoutine, setRoutine } from './args.js'
import { type Calls, commitAllowanceMs, run } from './calls.js'
import type { SqlDriver, WriteRoutine } from './driver.js'
import { createStorageKeys } from './keys.js'
import { parseApplyReply, parseSnapshot } from './replies.js'

/** Settings of the SQL path, resolved by `createKeyvStore`. */
export interface SqlStoreSettings {
  driver: SqlDriver
  /** Prepended to every key: the Keyv namespace and `:`, as Keyv prefixes its own keys. */
  prefix: string
  commandTimeoutMs: number
  /** Create the table and routines on first use when they are missing. */
  createTable: boolean
}

/** What every method of one store uses. */
interface Context {
  readonly calls: Calls
  readonly driver: SqlDriver
  readonly storageKey: StorageKey
}

/**
 * A `CounterStore` on PostgreSQL or MySQL / MariaDB: every call that writes is one call of one
 * routine in the database (one statement, or one transaction on one connection), so it is
 * atomic for every process: `capabilities: { shared: true, atomic: 'global' }`.
 */
export function createSqlStore(settings: SqlStoreSettings): KeyvCounterStore {
  const { driver, commandTimeoutMs } = settings
  const calls: Calls = {
    driver,
    commandTimeoutMs,
    allowanceMs: commitAllowanceMs(commandTimeoutMs),
    clock: undefined,
    preparing: undefined,
    migrated: !settings.createTable,
    closed: undefined,
    inFlight: new Set(),
  }
  const context: Context = { calls, driver, storageKey: createStorageKeys(settings.prefix) }
  const { storageKey } = context
  return {
    capabilities: { shared: true, atomic: 'global', canApplyTogether: () => true },
    apply: (ops, options = {}) => rejectThrown(() => apply(context, ops, options)),
    seed: (key, value, ttlMs, lockToken) =>
      rejectThrown(() => write(context, seedRoutine(storageKey, key, value, ttlMs, lockToken), (done) => done)),
    get: (key) => rejectThrown(() => get(context, key)),
    set: (key, value, ttlMs) =>
      rejectThrown(() => write(context, setRoutine(storageKey, key, value, ttlMs), () => undefined)),
    delete: (key) =>
      rejectThrown(() => write(context, { name: 'delete', key: storageKey(key, 'key') }, () => undefined)),
    acquireLock: (key, token, ttlMs) =>
      rejectThrown(() => write(context, acquireLockRoutine(storageKey, key, token, ttlMs), (done) => done)),
    releaseLock: (key, token) =>
      rejectThrown(() => write(context, releaseLockRoutine(storageKey, key, token), (done) => done)),
    /** Wait for calls in flight (each bounded by `commandTimeoutMs`), then end the store's own pool. */
    close: () => close(calls),
  }
}

/** An argument the caller got wrong rejects, as every other failure of a store call does. */
function rejectThrown<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return fn()
  } catch (error) {
    return Promise.reject(error)
  }
}

function apply(
  { calls, driver, storageKey }: Context,
  ops: readonly CounterOp[],
  options: ApplyOptions,
): Promise<ApplyResult> {
  const { args, writes } = applyArgs(ops, options, storageKey)
  if (ops.length === 0) return Promise.resolve<ApplyResult>({ ok: true, values: [], ttlMs: [] })
  options.signal?.throwIfAborted()
  // Sending it again is harmless when it changes nothing, or when a record would replay it.
  const idempotent = args.idempotencyKey !== null || !writes
  return run(calls, `${driver.dialect} apply`, idempotent, async (deadline, control) =>
    parseApplyReply(await driver.apply(args, deadline, control), ops.length),
  )
}

function get({ calls, driver, storageKey }: Context, key: string): Promise<CounterSnapshot | undefined> {
  const bytes = storageKey(key, 'key')
  return run(calls, `${driver.dialect} get`, true, async (deadline, control) =>
    parseSnapshot(await driver.get(bytes, deadline, control)),
  )
}

function write<T>({ calls, driver }: Context, routine: WriteRoutine, parse: (done: boolean) => T): Promise<T> {
  // Each write routine gives the same result when it runs twice: safe to retry.
  return run(calls, `${driver.dialect} ${routine.name}`, true, async (deadline, control) =>
    parse(await driver.write(routine, deadline, control)),
  )
}

function close(calls: Calls): Promise<void> {
  calls.closed ??= (async () => {
    await Promise.allSettled([...calls.inFlight])
    await calls.preparing?.catch(() => {})
    await calls.driver.close()
  })()
  return calls.closed
}
