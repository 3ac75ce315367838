import { createHash } from 'node:crypto'
import { StoreError } from '@andromeda/core'

/**
 * What this package stores through a Keyv storage adapter, inside Keyv's own `{ value, expires }`
 * wrapper (so `keyv.get(key)` shows it and `keyv.clear()` removes it). `expiresAt` is epoch ms
 * in the store's clock; absent means no expiry. Expiry is checked on every read.
 *
 * - `counter`: `held` is set while the counter has a `holds` entry, so a call that never needs
 *   the holds reads none.
 * - `holds`: the holds of the counter at `<counter>:holds`, as `[id, cost, expiresAt, holdMs]`
 *   tuples, expiring with the counter.
 * - `settled`: at `<counter>:settled:<id>`, a hold settled within the last `holdMs` (so settling
 *   it again replays).
 */
export type StoredEntry =
  | { type: 'counter'; value: number; expiresAt?: number; held?: true }
  | { type: 'record'; values: number[]; ttlMs: (number | null)[]; recordedAt: number; expiresAt: number }
  | { type: 'lock'; token: string; expiresAt: number }
  | { type: 'holds'; holds: HoldTuple[]; expiresAt?: number }
  | { type: 'settled'; expiresAt: number }

/**
 * One write of a call on the process-atomic path: `entry` at `key` (undefined: delete it), and
 * the live entry that was there (undefined: none), to put back if a later write of the call fails.
 */
export interface PlannedWrite {
  key: string
  entry: StoredEntry | undefined
  previous: StoredEntry | undefined
}

/** One hold: its id, its units, when they come back by themselves (epoch ms), and its length (ms). */
export type HoldTuple = [id: string, cost: number, expiresAt: number, holdMs: number]

/** The parts of a Keyv storage adapter this package calls (Keyv's `KeyvStoreAdapter`, or a Map). */
export interface AdapterLike {
  get(key: string): unknown
  set(key: string, value: unknown, ttl?: number): unknown
  delete(key: string): unknown
}

/** The parts of a Keyv instance this package reads. */
export interface KeyvLike {
  readonly store: unknown
  readonly namespace?: string | undefined
  readonly useKeyPrefix?: boolean
  on?(event: 'error', listener: (error: unknown) => void): unknown
  off?(event: 'error', listener: (error: unknown) => void): unknown
}

const HASH_LENGTH = 64

/**
 * Maps engine keys to storage keys under the Keyv namespace, the way Keyv prefixes its own keys.
 *
 * SQL adapters keep keys in a bounded column (`VARCHAR(255)` by default), so a storage key of
 * `maxKeyLength - 2` UTF-16 units or fewer is kept as is, and a longer one becomes its start, `#`
 * and the SHA-256 of the whole key, `maxKeyLength - 1` or `maxKeyLength` units long. Both forms
 * never have the same length, and SHA-256 does not collide in practice, so distinct keys keep
 * distinct storage keys.
 */
export function createKeyMapper(prefix: string, maxKeyLength: number): (key: string) => string {
  return (key) => {
    const full = prefix + key
    if (full.length <= maxKeyLength - 2) return full
    const budget = maxKeyLength - prefix.length - HASH_LENGTH - 1
    let head = key.slice(0, budget)
    // Never cut a surrogate pair in half: a lone surrogate is not valid text for a SQL column.
    const last = head.charCodeAt(head.length - 1)
    if (last >= 0xd800 && last <= 0xdbff) head = head.slice(0, -1)
    return `${prefix}${head}#${createHash('sha256').update(key).digest('hex')}`
  }
}

/** Smallest `maxKeyLength` that leaves room for a hashed key under `prefix`. */
export function minKeyLength(prefix: string): number {
  return prefix.length + HASH_LENGTH + 1 + 16
}

/** Decode what an adapter returned; anything that is not one of our entries reads as absent. */
export function decodeEntry(raw: unknown): StoredEntry | undefined {
  if (raw === undefined || raw === null) return undefined
  let wrapper: unknown = raw
  if (typeof raw === 'string') {
    try {
      wrapper = JSON.parse(raw)
    } catch {
      return undefined
    }
  }
  const entry = (wrapper as { value?: unknown } | null)?.value as StoredEntry | undefined
  if (typeof entry !== 'object' || entry === null) return undefined
  if (entry.type === 'counter' && Number.isSafeInteger(entry.value)) return entry
  if (
    entry.type === 'record' &&
    Array.isArray(entry.values) &&
    Array.isArray(entry.ttlMs) &&
    typeof entry.recordedAt === 'number'
  )
    return entry
  if (entry.type === 'lock' && typeof entry.token === 'string') return entry
  if (entry.type === 'holds' && Array.isArray(entry.holds) && entry.holds.every(isHoldTuple)) return entry
  if (entry.type === 'settled' && typeof entry.expiresAt === 'number') return entry
  return undefined
}

function isHoldTuple(hold: unknown): hold is HoldTuple {
  return (
    Array.isArray(hold) &&
    hold.length === 4 &&
    typeof hold[0] === 'string' &&
    Number.isSafeInteger(hold[1]) &&
    typeof hold[2] === 'number' &&
    Number.isSafeInteger(hold[3])
  )
}

/** Encode an entry the way Keyv's default serializer writes `{ value, expires }`. */
export function encodeEntry(entry: StoredEntry): string {
  return JSON.stringify({ value: entry, expires: entry.expiresAt ?? null })
}

/**
 * One critical section's calls to the adapter. Every call is raced against one deadline shared by
 * the section, and against Keyv's `error` event; the raw calls are kept so the caller can hold its
 * keys until each of them has really settled (a late write must never land after the next holder
 * has read the key).
 */
export class Session {
  private readonly raw: Promise<unknown>[] = []
  /** True once a write or delete was sent: from then on a failure may have changed something. */
  wrote = false

  constructor(
    private readonly adapter: AdapterLike,
    private readonly deadline: number,
    private readonly timeoutMs: number,
    private readonly watch: (reject: (error: unknown) => void) => () => void,
  ) {}

  /**
   * Resolves when every call this section sent, and all work handed to `track`, has settled
   * (never rejects). Work tracked while waiting is waited for too.
   */
  async settled(): Promise<void> {
    let seen: number
    do {
      seen = this.raw.length
      await Promise.allSettled(this.raw)
    } while (seen !== this.raw.length)
  }

  /** Keep the section's keys held until `work` settles (e.g. a roll-back running in the background). */
  track(work: Promise<unknown>): void {
    this.raw.push(work)
  }

  async get(storageKey: string): Promise<unknown> {
    return this.call('get', () => this.adapter.get(storageKey))
  }

  async set(storageKey: string, value: string, ttlHintMs: number | undefined): Promise<void> {
    this.wrote = true
    const result = await this.call('set', () => this.adapter.set(storageKey, value, ttlHintMs))
    // Keyv adapters answer `false` when a write was not saved (Map.set answers the map).
    if (result === false)
      throw new StoreError('keyv store did not save a value (set returned false)', { retryable: false })
  }

  async delete(storageKey: string): Promise<void> {
    this.wrote = true
    // `false` from delete means "was not there", which is fine.
    await this.call('delete', () => this.adapter.delete(storageKey))
  }

  private call(name: string, send: () => unknown): Promise<unknown> {
    let started: Promise<unknown>
    try {
      started = Promise.resolve(send())
    } catch (error) {
      started = Promise.reject(error)
    }
    this.raw.push(started)
    const remaining = this.deadline - Date.now()
    return new Promise<unknown>((resolve, reject) => {
      const fail = (error: unknown) => {
        cleanup()
        reject(this.wrap(name, error))
      }
      const timer = setTimeout(() => fail(new Error(`no answer within ${this.timeoutMs} ms`)), Math.max(remaining, 0))
      const unwatch = this.watch(fail)
      const cleanup = () => {
        clearTimeout(timer)
        unwatch()
      }
      started.then((value) => {
        cleanup()
        resolve(value)
      }, fail)
    })
  }

  private wrap(name: string, error: unknown): StoreError {
    if (StoreError.isInstance(error)) return error
    const detail = error instanceof Error ? error.message : String(error)
    return new StoreError(`keyv store ${name} failed: ${detail}`, { retryable: !this.wrote, cause: error })
  }
}
