import { StoreError } from '@andromeda/core'
import { decodeEntry, encodeEntry, type PlannedWrite, Session, type StoredEntry } from './backend.js'
import { ExpiryIndex } from './expiry-index.js'
import { KeyedMutex } from './mutex.js'
import type { ProcessStoreSettings } from './process-store.js'

/** Extra lifetime given to the adapter's own TTL, which only cleans up: expiry is checked on read. */
const TTL_HINT_SLACK_MS = 1_000

/**
 * The entries of the process-atomic path on the Keyv adapter: critical sections under the
 * per-key mutex, typed reads that skip expired entries, writes that note their expiry for the
 * sweep, and a call's writes made in order with a roll-back when one fails.
 */
export class ProcessEntries {
  private readonly mutex = new KeyedMutex()
  readonly expiries = new ExpiryIndex()
  readonly clock: () => number
  closed = false

  constructor(private readonly settings: ProcessStoreSettings) {
    this.clock = settings.clock
  }

  /**
   * Run `fn` holding the keys. Keys are released only when every adapter call `fn` sent has
   * settled, even after `fn` itself gave up on a timeout.
   */
  async critical<T>(keys: readonly string[], fn: (io: Session) => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError('keyv store is closed', { retryable: false })
    const { lockWaitTimeoutMs } = this.settings
    const release = await this.mutex.lock(
      keys.map(this.settings.storageKey),
      lockWaitTimeoutMs,
      () =>
        new StoreError(`keyv store: a key stayed busy for ${lockWaitTimeoutMs} ms (an earlier call has not settled)`, {
          retryable: true,
        }),
    )
    const io = this.session()
    try {
      return await fn(io)
    } finally {
      void io.settled().then(release)
    }
  }

  /** A session with a fresh deadline (a critical section's, or a roll-back's). */
  private session(): Session {
    const { adapter, commandTimeoutMs, watch } = this.settings
    return new Session(adapter, Date.now() + commandTimeoutMs, commandTimeoutMs, watch)
  }

  /** The live entry of a type at `key`, or undefined (missing, expired or another type). */
  async read<K extends StoredEntry['type']>(
    io: Session,
    key: string,
    type: K,
  ): Promise<Extract<StoredEntry, { type: K }> | undefined> {
    const entry = decodeEntry(await io.get(this.settings.storageKey(key)))
    if (!entry || entry.type !== type) return undefined
    if (entry.expiresAt !== undefined && entry.expiresAt <= this.clock()) return undefined
    return entry as Extract<StoredEntry, { type: K }>
  }

  async write(io: Session, key: string, entry: StoredEntry): Promise<void> {
    const hint =
      entry.expiresAt === undefined ? undefined : Math.max(entry.expiresAt - this.clock(), 1) + TTL_HINT_SLACK_MS
    await io.set(this.settings.storageKey(key), encodeEntry(entry), hint)
    this.expiries.note(key, entry.expiresAt)
  }

  async remove(io: Session, key: string): Promise<void> {
    await io.delete(this.settings.storageKey(key))
    this.expiries.forget(key)
  }

  /**
   * Delete the entries of `keys` (held by the caller) that expired: the adapter never drops
   * them by itself. A failure only puts the key back in the index, for a later call.
   */
  async sweep(io: Session, keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      try {
        const entry = decodeEntry(await io.get(this.settings.storageKey(key)))
        if (entry?.expiresAt !== undefined && entry.expiresAt <= this.clock()) await this.remove(io, key)
        else if (entry?.expiresAt !== undefined) this.expiries.note(key, entry.expiresAt)
      } catch {
        this.expiries.note(key, this.clock())
      }
    }
  }

  /** Milliseconds an entry has left (at least 1), or undefined for one that never expires. */
  ttlOf(entry: { expiresAt?: number | undefined } | undefined): number | undefined {
    return entry?.expiresAt === undefined ? undefined : Math.max(entry.expiresAt - this.clock(), 1)
  }

  /**
   * Make a call's writes in order. Keyv has no transactions: if one fails, the ones already done
   * are put back (in the background, still holding the keys) before the keys are released.
   */
  async commit(io: Session, writes: readonly PlannedWrite[]): Promise<void> {
    const undo: Array<(again: Session) => Promise<void>> = []
    try {
      for (const { key, entry, previous } of writes) {
        if (entry === undefined) await this.remove(io, key)
        else await this.write(io, key, entry)
        undo.push((again) => (previous ? this.write(again, key, previous) : this.remove(again, key)))
      }
    } catch (error) {
      if (undo.length > 0) io.track(rollBack(undo, this.session()))
      throw error
    }
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
