import type { ApplyOptions, ApplyResult, CounterOp, CounterSnapshot } from '@andromeda/core'
import { checkApplyArgs, checkInteger, checkKey, lockKey } from '@andromeda/core/store'
import { checkToken } from './args.js'
import type { AdapterLike } from './backend.js'
import type { KeyvCounterStore } from './counter-store.js'
import { planApply } from './process-apply.js'
import { ProcessEntries } from './process-entries.js'
import { counterEntry, holdsKeyOf, reclaimExpired } from './process-holds.js'
import { loadLockKeys } from './process-loads.js'

/** Settings of the process-atomic path, resolved by `createKeyvStore`. */
export interface ProcessStoreSettings {
  adapter: AdapterLike
  storageKey: (key: string) => string
  shared: boolean
  clock: () => number
  /** True when the user injected `clock`: the store exposes it for quotas to adopt. */
  injectedClock: boolean
  commandTimeoutMs: number
  lockWaitTimeoutMs: number
  /** Subscribe a failure callback to the Keyv `error` event; returns the unsubscribe. */
  watch: (fail: (error: unknown) => void) => () => void
  onClose: () => void
}

/**
 * Expired entries deleted by each `apply`, at most: more than a call writes with a new expiry
 * (a counter, its holds, a record, a settled mark), so the expired ones never pile up.
 */
const SWEEP_PER_CALL = 8

/**
 * The `CounterStore` over any Keyv storage adapter: every call that writes runs under a per-key
 * async mutex (several keys taken together, see `KeyedMutex`), so calls in this process never
 * interleave on a key. Other processes sharing the backend are not serialised. A counter's holds
 * and settled marks (see `process-holds.ts`) are only touched under the counter's own key.
 * Every method checks its arguments first (see `args.ts`), so a bad one changes nothing.
 */
export function createProcessStore(settings: ProcessStoreSettings): KeyvCounterStore {
  const entries = new ProcessEntries(settings)
  return {
    capabilities: { shared: settings.shared, atomic: 'process', canApplyTogether: () => true },
    // An injected clock is the quota's too (see `CounterStore.clock`).
    ...(settings.injectedClock ? { clock: settings.clock } : {}),

    async apply(ops, opts = {}) {
      return applyWithSweep(entries, ops, opts)
    },
    ...counterMethods(entries),
    ...lockMethods(entries),

    async close() {
      if (entries.closed) return
      entries.closed = true
      settings.onClose()
    },
  }
}

/** `apply` holding its keys, plus a few expired entries that are deleted along with it, under their own keys' lock. */
async function applyWithSweep(
  entries: ProcessEntries,
  ops: readonly CounterOp[],
  opts: ApplyOptions,
): Promise<ApplyResult> {
  checkApplyArgs(ops, opts)
  opts.signal?.throwIfAborted()
  // A give-back may revoke its counter's loader lock: hold it as `acquireLock` and `seed` do.
  const keys = [...ops.map((op) => op.key), ...loadLockKeys(ops)]
  if (opts.idempotencyKey !== undefined) keys.push(opts.idempotencyKey)
  if (opts.clearIdempotencyKey !== undefined) keys.push(opts.clearIdempotencyKey)
  const due = entries.expiries.due(entries.clock(), SWEEP_PER_CALL)
  return entries.critical(due.length === 0 ? keys : [...keys, ...due], async (io) => {
    let result: ApplyResult
    try {
      opts.signal?.throwIfAborted()
      const plan = await planApply((key, type) => entries.read(io, key, type), ops, opts, entries.clock)
      await entries.commit(io, plan.writes)
      result = plan.result
    } catch (error) {
      for (const key of due) entries.expiries.note(key, entries.clock())
      throw error
    }
    if (due.length > 0) await entries.sweep(io, due)
    return result
  })
}

/** `seed`, `get`, `set` and `delete`, each holding its key. */
function counterMethods(entries: ProcessEntries): Pick<KeyvCounterStore, 'seed' | 'get' | 'set' | 'delete'> {
  const { clock } = entries
  return {
    async seed(key, value, ttlMs, lockToken) {
      checkKey('key', key)
      checkInteger('value', value, 0)
      if (ttlMs !== undefined) checkInteger('ttlMs', ttlMs, 1)
      if (lockToken !== undefined) checkToken('lockToken', lockToken)
      // With a token, only under the load's own lock: a give-back that met the missing counter
      // deleted it, and the usage this load read may count the units that went back.
      const lock = lockKey(key)
      return entries.critical(lockToken === undefined ? [key] : [key, lock], async (io) => {
        if (await entries.read(io, key, 'counter')) return false
        if (lockToken !== undefined && (await entries.read(io, lock, 'lock'))?.token !== lockToken) return false
        await entries.write(io, key, counterEntry(value, ttlMs === undefined ? undefined : clock() + ttlMs, false))
        return true
      })
    },

    async get(key): Promise<CounterSnapshot | undefined> {
      checkKey('key', key)
      // Under the lock too, so a read never sees a value that a failed apply is about to put back.
      return entries.critical([key], async (io) => {
        const entry = await entries.read(io, key, 'counter')
        if (!entry) return undefined
        let value = entry.value
        if (entry.held) {
          // A read gives back the counter's expired holds first, so it shows what is really in use.
          const reclaimed = reclaimExpired(key, entry, await entries.read(io, holdsKeyOf(key), 'holds'), clock())
          await entries.commit(io, reclaimed.writes)
          value = reclaimed.value
        }
        const ttlMs = entries.ttlOf(entry)
        return ttlMs === undefined ? { value } : { value, ttlMs }
      })
    },

    async set(key, value, ttlMs) {
      checkKey('key', key)
      checkInteger('value', value, 0)
      if (ttlMs !== undefined) checkInteger('ttlMs', ttlMs, 1)
      await entries.critical([key], async (io) => {
        const entry = await entries.read(io, key, 'counter')
        // A live counter keeps its lifetime and its holds.
        const expiresAt = entry ? entry.expiresAt : ttlMs === undefined ? undefined : clock() + ttlMs
        await entries.write(io, key, counterEntry(value, expiresAt, entry?.held === true))
      })
    },

    async delete(key) {
      checkKey('key', key)
      await entries.critical([key], async (io) => {
        // The holds first: a failure in between leaves the counter with its units (a later
        // call can delete it again), never a holds entry nobody would read or reclaim.
        await entries.remove(io, holdsKeyOf(key))
        await entries.remove(io, key)
      })
    },
  }
}

/** `acquireLock` and `releaseLock`: a lock is an entry holding its owner's token. */
function lockMethods(entries: ProcessEntries): Pick<KeyvCounterStore, 'acquireLock' | 'releaseLock'> {
  return {
    async acquireLock(key, token, ttlMs) {
      checkKey('key', key)
      checkToken('token', token)
      checkInteger('ttlMs', ttlMs, 1)
      return entries.critical([key], async (io) => {
        const lock = await entries.read(io, key, 'lock')
        if (lock) return lock.token === token
        await entries.write(io, key, { type: 'lock', token, expiresAt: entries.clock() + ttlMs })
        return true
      })
    },

    async releaseLock(key, token) {
      checkKey('key', key)
      checkToken('token', token)
      return entries.critical([key], async (io) => {
        const lock = await entries.read(io, key, 'lock')
        if (!lock || lock.token !== token) return false
        await entries.remove(io, key)
        return true
      })
    },
  }
}
