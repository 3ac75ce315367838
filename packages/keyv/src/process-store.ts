import type { ApplyOptions, ApplyResult, CounterOp, CounterSnapshot } from '@andromeda/core'
import type { KeyvCounterStore } from './counter-store.js'
import { StoreError } from '@andromeda/core'
import { type AdapterLike, decodeEntry, encodeEntry, type PlannedWrite, Session, type StoredEntry } from './backend.js'
import { ExpiryIndex } from './expiry-index.js'
import { KeyedMutex } from './mutex.js'
import { planApply } from './process-apply.js'
import { counterEntry, holdsKeyOf, reclaimExpired } from './process-holds.js'

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

/** Extra lifetime given to the adapter's own TTL, which only cleans up: expiry is checked on read. */
const TTL_HINT_SLACK_MS = 1_000
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
 */
export function createProcessStore(settings: ProcessStoreSettings): KeyvCounterStore {
  const { adapter, storageKey, clock } = settings
  const mutex = new KeyedMutex()
  const expiries = new ExpiryIndex()
  let closed = false

  /**
   * Run `fn` holding the keys. Keys are released only when every adapter call `fn` sent has
   * settled, even after `fn` itself gave up on a timeout.
   */
  async function critical<T>(keys: readonly string[], fn: (io: Session) => Promise<T>): Promise<T> {
    if (closed) throw new StoreError('keyv store is closed', { retryable: false })
    const storageKeys = keys.map(storageKey)
    const release = await mutex.lock(
      storageKeys,
      settings.lockWaitTimeoutMs,
      () =>
        new StoreError(`keyv store: a key stayed busy for ${settings.lockWaitTimeoutMs} ms (an earlier call has not settled)`, {
          retryable: true,
        }),
    )
    const io = new Session(adapter, Date.now() + settings.commandTimeoutMs, settings.commandTimeoutMs, settings.watch)
    try {
      return await fn(io)
    } finally {
      void io.settled().then(release)
    }
  }

  /** A session with a fresh deadline, for a roll-back. */
  const freshSession = () => new Session(adapter, Date.now() + settings.commandTimeoutMs, settings.commandTimeoutMs, settings.watch)

  /** The live entry of a type at `key`, or undefined (missing, expired or another type). */
  async function read<K extends StoredEntry['type']>(io: Session, key: string, type: K): Promise<Extract<StoredEntry, { type: K }> | undefined> {
    const entry = decodeEntry(await io.get(storageKey(key)))
    if (!entry || entry.type !== type) return undefined
    if (entry.expiresAt !== undefined && entry.expiresAt <= clock()) return undefined
    return entry as Extract<StoredEntry, { type: K }>
  }

  async function write(io: Session, key: string, entry: StoredEntry): Promise<void> {
    const hint = entry.expiresAt === undefined ? undefined : Math.max(entry.expiresAt - clock(), 1) + TTL_HINT_SLACK_MS
    await io.set(storageKey(key), encodeEntry(entry), hint)
    expiries.note(key, entry.expiresAt)
  }

  async function remove(io: Session, key: string): Promise<void> {
    await io.delete(storageKey(key))
    expiries.forget(key)
  }

  /**
   * Delete the entries of `keys` (held by the caller) that expired: the adapter never drops
   * them by itself. A failure only puts the key back in the index, for a later call.
   */
  async function sweep(io: Session, keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      try {
        const entry = decodeEntry(await io.get(storageKey(key)))
        if (entry?.expiresAt !== undefined && entry.expiresAt <= clock()) await remove(io, key)
        else if (entry?.expiresAt !== undefined) expiries.note(key, entry.expiresAt)
      } catch {
        expiries.note(key, clock())
      }
    }
  }

  const ttlOf = (entry: { expiresAt?: number | undefined } | undefined) =>
    entry?.expiresAt === undefined ? undefined : Math.max(entry.expiresAt - clock(), 1)

  /**
   * Make a call's writes in order. Keyv has no transactions: if one fails, the ones already done
   * are put back (in the background, still holding the keys) before the keys are released.
   */
  async function commit(io: Session, writes: readonly PlannedWrite[]): Promise<void> {
    const undo: Array<(again: Session) => Promise<void>> = []
    try {
      for (const { key, entry, previous } of writes) {
        if (entry === undefined) await remove(io, key)
        else await write(io, key, entry)
        undo.push((again) => (previous ? write(again, key, previous) : remove(again, key)))
      }
    } catch (error) {
      if (undo.length > 0) io.track(rollBack(undo, freshSession()))
      throw error
    }
  }

  async function applyLocked(io: Session, ops: readonly CounterOp[], opts: ApplyOptions): Promise<ApplyResult> {
    opts.signal?.throwIfAborted()
    const plan = await planApply((key, type) => read(io, key, type), ops, opts, clock)
    await commit(io, plan.writes)
    return plan.result
  }

  return {
    capabilities: { shared: settings.shared, atomic: 'process', canApplyTogether: () => true },
    // An injected clock is the quota's too (see `CounterStore.clock`).
    ...(settings.injectedClock ? { clock } : {}),

    async apply(ops, opts = {}) {
      opts.signal?.throwIfAborted()
      const keys = ops.map((op) => op.key)
      if (opts.idempotencyKey !== undefined) keys.push(opts.idempotencyKey)
      if (opts.clearIdempotencyKey !== undefined) keys.push(opts.clearIdempotencyKey)
      // A few expired entries are deleted along with each call, under their own keys' lock.
      const due = expiries.due(clock(), SWEEP_PER_CALL)
      return critical(due.length === 0 ? keys : [...keys, ...due], async (io) => {
        let result: ApplyResult
        try {
          result = await applyLocked(io, ops, opts)
        } catch (error) {
          for (const key of due) expiries.note(key, clock())
          throw error
        }
        if (due.length > 0) await sweep(io, due)
        return result
      })
    },

    async seed(key, value, ttlMs) {
      return critical([key], async (io) => {
        if (await read(io, key, 'counter')) return false
        await write(io, key, counterEntry(value, ttlMs === undefined ? undefined : clock() + ttlMs, false))
        return true
      })
    },

    async get(key): Promise<CounterSnapshot | undefined> {
      // Under the lock too, so a read never sees a value that a failed apply is about to put back.
      return critical([key], async (io) => {
        const entry = await read(io, key, 'counter')
        if (!entry) return undefined
        let value = entry.value
        if (entry.held) {
          // A read gives back the counter's expired holds first, so it shows what is really in use.
          const reclaimed = reclaimExpired(key, entry, await read(io, holdsKeyOf(key), 'holds'), clock())
          await commit(io, reclaimed.writes)
          value = reclaimed.value
        }
        const ttlMs = ttlOf(entry)
        return ttlMs === undefined ? { value } : { value, ttlMs }
      })
    },

    async set(key, value, ttlMs) {
      await critical([key], async (io) => {
        const entry = await read(io, key, 'counter')
        // A live counter keeps its lifetime and its holds.
        const expiresAt = entry ? entry.expiresAt : ttlMs === undefined ? undefined : clock() + ttlMs
        await write(io, key, counterEntry(value, expiresAt, entry?.held === true))
      })
    },

    async delete(key) {
      await critical([key], async (io) => {
        // The holds first: a failure in between leaves the counter with its units (a later
        // call can delete it again), never a holds entry nobody would read or reclaim.
        await remove(io, holdsKeyOf(key))
        await remove(io, key)
      })
    },

    async acquireLock(key, token, ttlMs) {
      return critical([key], async (io) => {
        const lock = await read(io, key, 'lock')
        if (lock) return lock.token === token
        await write(io, key, { type: 'lock', token, expiresAt: clock() + ttlMs })
        return true
      })
    },

    async releaseLock(key, token) {
      return critical([key], async (io) => {
        const lock = await read(io, key, 'lock')
        if (!lock || lock.token !== token) return false
        await remove(io, key)
        return true
      })
    },

    async close() {
      if (closed) return
      closed = true
      settings.onClose()
    },
  }
}

/** Put back what a failed apply already wrote, newest first; a failing undo stops the rest. */
async function rollBack(undo: Array<(again: Session) => Promise<void>>, again: Session): Promise<void> {
  try {
    for (const step of undo.reverse()) await step(again)
  } catch {
    // Nothing more can be done here: the caller already has a non-retryable StoreError.
  } finally {
    await again.settled()
  }
}
