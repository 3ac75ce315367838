import type { ApplyOptions, ApplyResult, CounterOp, CounterSnapshot } from '@andromeda/core'
import type { KeyvCounterStore } from './counter-store.js'
import { StoreError } from '@andromeda/core'
import { type AdapterLike, decodeEntry, encodeEntry, Session, type StoredEntry } from './backend.js'
import { KeyedMutex } from './mutex.js'

/** Settings of the process-atomic path, resolved by `createKeyvStore`. */
export interface ProcessStoreSettings {
  adapter: AdapterLike
  storageKey: (key: string) => string
  shared: boolean
  clock: () => number
  commandTimeoutMs: number
  lockWaitTimeoutMs: number
  /** Subscribe a failure callback to the Keyv `error` event; returns the unsubscribe. */
  watch: (fail: (error: unknown) => void) => () => void
  onClose: () => void
}

const DEFAULT_IDEMPOTENCY_TTL_MS = 86_400_000
/** Extra lifetime given to the adapter's own TTL, which only cleans up: expiry is checked on read. */
const TTL_HINT_SLACK_MS = 1_000

type CounterEntry = Extract<StoredEntry, { type: 'counter' }>

/**
 * The `CounterStore` over any Keyv storage adapter: every call that writes runs under a per-key
 * async mutex (several keys taken together, see `KeyedMutex`), so calls in this process never
 * interleave on a key. Other processes sharing the backend are not serialised.
 */
export function createProcessStore(settings: ProcessStoreSettings): KeyvCounterStore {
  const { adapter, storageKey, clock } = settings
  const mutex = new KeyedMutex()
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
  }

  const ttlOf = (entry: { expiresAt?: number | undefined } | undefined) =>
    entry?.expiresAt === undefined ? undefined : Math.max(entry.expiresAt - clock(), 1)

  async function applyLocked(io: Session, ops: readonly CounterOp[], opts: ApplyOptions): Promise<ApplyResult> {
    opts.signal?.throwIfAborted()
    const distinct = [...new Set(ops.map((op) => op.key))]
    const [record, ...loaded] = await Promise.all([
      opts.idempotencyKey === undefined ? undefined : read(io, opts.idempotencyKey, 'record'),
      ...distinct.map((key) => read(io, key, 'counter')),
    ])
    if (record) {
      // Lifetimes as seen now, so a replay reports the reset time the recorded call did.
      const elapsed = clock() - record.recordedAt
      return { ok: true, values: [...record.values], ttlMs: record.ttlMs.map((t) => (t === null ? undefined : t - elapsed)), replayed: true }
    }
    const stored = new Map<string, CounterEntry | undefined>(distinct.map((key, i) => [key, loaded[i] as CounterEntry | undefined]))

    // Work on a scratch copy so several ops on one key see each other, and a refusal writes nothing.
    const scratch = new Map<string, { value: number; expiresAt: number | undefined; exists: boolean; dirty: boolean }>()
    for (const [key, entry] of stored) {
      scratch.set(key, entry ? { value: entry.value, expiresAt: entry.expiresAt, exists: true, dirty: false } : { value: 0, expiresAt: undefined, exists: false, dirty: false })
    }
    const refuse = (index: number, reason: 'limit' | 'floor' | 'missing'): ApplyResult => ({
      ok: false,
      index,
      reason,
      values: ops.map((op) => stored.get(op.key)?.value),
      ttlMs: ops.map((op) => ttlOf(stored.get(op.key))),
    })
    const now = clock()
    // A counter to report missing is reported only when no other op is refused: loading it
    // could not make the call fit.
    const unknown = new Set<string>()
    let missing = -1
    for (const [index, op] of ops.entries()) {
      if (unknown.has(op.key)) continue
      const state = scratch.get(op.key)!
      if (!state.exists && op.ifMissing === 'report') {
        if (missing < 0) missing = index
        unknown.add(op.key)
        continue
      }
      const next = state.value + op.delta
      if (op.delta > 0 && ((op.max !== undefined && next > op.max) || !Number.isSafeInteger(next))) return refuse(index, 'limit')
      if (op.delta < 0 && op.min !== undefined && next < op.min) return refuse(index, 'floor')
      if (op.delta === 0) continue
      if (!state.exists) {
        state.exists = true
        state.expiresAt = op.ttlMs === undefined ? undefined : now + op.ttlMs
      }
      state.value = next
      state.dirty = true
    }
    if (missing >= 0) return refuse(missing, 'missing')
    const values = ops.map((op) => scratch.get(op.key)!.value)
    const ttlMs = ops.map((op) => ttlOf(scratch.get(op.key)))

    // Keyv has no transactions: writes go one by one, and if one fails the ones already done
    // are put back (in the background, still holding the keys) before the keys are released.
    const undo: Array<(again: Session) => Promise<void>> = []
    try {
      for (const [key, state] of scratch) {
        if (!state.dirty) continue
        const previous = stored.get(key)
        await write(io, key, { type: 'counter', value: state.value, ...(state.expiresAt === undefined ? {} : { expiresAt: state.expiresAt }) })
        undo.push((again) => (previous ? write(again, key, previous) : again.delete(storageKey(key))))
      }
      if (opts.clearIdempotencyKey !== undefined) {
        const cleared = opts.clearIdempotencyKey
        const previous = await read(io, cleared, 'record')
        if (previous) {
          await io.delete(storageKey(cleared))
          undo.push((again) => write(again, cleared, previous))
        }
      }
      if (opts.idempotencyKey !== undefined) {
        const lifetime = opts.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS
        await write(io, opts.idempotencyKey, {
          type: 'record',
          values,
          ttlMs: ttlMs.map((t) => t ?? null),
          recordedAt: now,
          expiresAt: now + lifetime,
        })
      }
    } catch (error) {
      if (undo.length > 0) io.track(rollBack(undo, freshSession()))
      throw error
    }
    return { ok: true, values, ttlMs }
  }

  return {
    capabilities: { shared: settings.shared, atomic: 'process', canApplyTogether: () => true },

    async apply(ops, opts = {}) {
      opts.signal?.throwIfAborted()
      const keys = ops.map((op) => op.key)
      if (opts.idempotencyKey !== undefined) keys.push(opts.idempotencyKey)
      if (opts.clearIdempotencyKey !== undefined) keys.push(opts.clearIdempotencyKey)
      return critical(keys, (io) => applyLocked(io, ops, opts))
    },

    async seed(key, value, ttlMs) {
      return critical([key], async (io) => {
        if (await read(io, key, 'counter')) return false
        await write(io, key, { type: 'counter', value, ...(ttlMs === undefined ? {} : { expiresAt: clock() + ttlMs }) })
        return true
      })
    },

    async get(key): Promise<CounterSnapshot | undefined> {
      // Under the lock too, so a read never sees a value that a failed apply is about to put back.
      return critical([key], async (io) => {
        const entry = await read(io, key, 'counter')
        if (!entry) return undefined
        const ttlMs = ttlOf(entry)
        return ttlMs === undefined ? { value: entry.value } : { value: entry.value, ttlMs }
      })
    },

    async set(key, value, ttlMs) {
      await critical([key], async (io) => {
        const entry = await read(io, key, 'counter')
        const expiresAt = entry ? entry.expiresAt : ttlMs === undefined ? undefined : clock() + ttlMs
        await write(io, key, { type: 'counter', value, ...(expiresAt === undefined ? {} : { expiresAt }) })
      })
    },

    async delete(key) {
      await critical([key], (io) => io.delete(storageKey(key)))
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
        await io.delete(storageKey(key))
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
