/**
 * Key building. Every key of one (quota, id) pair shares one Redis hash tag — the part between
 * the first `{` and the next `}` — so a counter, its lock and its idempotency records always
 * sit in one Cluster slot (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags).
 *
 * Names and ids are percent-encoded for `%`, `{`, `}` and `:`, which makes the mapping
 * injective: distinct ids never share a key, and no id can end the hash tag early.
 */

import { InvalidArgumentError } from './errors.js'
import { PERIODS, periodWindow } from './period.js'
import type { Period } from './types.js'
import { checkOneOf, checkString, MAX_ID_LENGTH, MAX_NAME_LENGTH } from './validate.js'

const RESERVED = /[%{}:]/g

/** True when `part` holds `%`, `{`, `}` or `:` (a loop: cheaper than a regex for the short ids of the hot path). */
function hasReserved(part: string): boolean {
  for (let i = 0; i < part.length; i++) {
    const c = part.charCodeAt(i)
    if (c === 37 || c === 58 || c === 123 || c === 125) return true
  }
  return false
}

/** Percent-encode the characters that carry meaning in a key. Injective. */
export function encodeKeyPart(part: string): string {
  return hasReserved(part) ? part.replace(RESERVED, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`) : part
}

/**
 * The hash-tag group of one (quota, id): `{<name>:<id>}`, both percent-encoded (see
 * `encodeKeyPart`), braces included. Every key of the pair starts with it (the counter of each
 * window, its lock and holds, the id's idempotency records), so Redis Cluster hashes them all by
 * `<name>:<id>` and keeps them in one slot.
 *
 * @throws InvalidArgumentError naming `quota` or `id` when it is not a name or id a quota accepts.
 * @example
 * ```ts
 * hashTagGroup('voucher', 'SUMMER24') // '{voucher:SUMMER24}'
 * ```
 */
export function hashTagGroup(quota: string, id: string): string {
  checkString('quota', quota, MAX_NAME_LENGTH)
  checkString('id', id, MAX_ID_LENGTH)
  return `{${encodeKeyPart(quota)}:${encodeKeyPart(id)}}`
}

/** What every key of one quota starts with, `{<name>:`; computed once per quota by the engine. */
export function quotaKeyPrefix(quota: string): string {
  return `{${encodeKeyPart(quota)}:`
}

/**
 * What makes a quota's counters different from another's of the same name: a calendar window
 * (which period, and which window of it: its start), or a lifetime from creation (`'ttl'`).
 * Undefined: a counter that lives until reset.
 */
export type CounterWindow = { period: Period; startAt: number } | 'ttl' | undefined

/**
 * Counter key of one (quota, id): `{<name>:<id>}:usage`, then the window kind, so a quota
 * named `api` per day and another per month (or one with a TTL) never share a counter, even
 * when their windows start at the same instant: `...:usage:day:<startAt>`, `...:usage:ttl`.
 * Use it to read a counter straight from a store (a test, a migration, a dashboard); pass the
 * window the quota counts in (`'ttl'` for a quota with `ttlMs`, `{ period, startAt }` for a
 * periodic one), or nothing for a quota with neither.
 *
 * @throws InvalidArgumentError naming `quota`, `id`, `window`, `window.period` or
 *   `window.startAt`: a name or id a quota would refuse, or a window no quota counts in (a
 *   `startAt` that is not the start of a UTC `period` window would name a counter that never exists).
 * @example
 * ```ts
 * const snapshot = await store.get(counterKey('voucher', 'SUMMER24'))
 * const today = await store.get(counterKey('api', user, { period: 'day', startAt: Date.UTC(2026, 0, 31) }))
 * ```
 */
export function counterKey(quota: string, id: string, window?: CounterWindow): string {
  checkString('quota', quota, MAX_NAME_LENGTH)
  checkString('id', id, MAX_ID_LENGTH)
  checkWindow(window)
  return counterKeyIn(quotaKeyPrefix(quota), id, window)
}

/** A `CounterWindow` some quota counts in: nothing, `'ttl'`, or the start of a UTC period window. */
function checkWindow(window: unknown): void {
  if (window === undefined || window === 'ttl') return
  if (typeof window !== 'object' || window === null)
    throw new InvalidArgumentError('window', `must be 'ttl', { period, startAt } or undefined, got ${String(window)}`)
  const { period, startAt } = window as { period: unknown; startAt: unknown }
  const checked = checkOneOf('window.period', period, PERIODS)
  const around =
    typeof startAt === 'number' && Number.isSafeInteger(startAt) ? periodWindow(checked, startAt) : undefined
  // A quota's clock reads epoch ms >= 0, so its first window is the one holding 0 (1970's first
  // week starts on Monday 1969-12-29).
  const endsAfterEpoch = around !== undefined && around.endAt > 0
  if (endsAfterEpoch && around.startAt === startAt) return
  const hint = endsAfterEpoch ? ` (the one around it starts at ${around.startAt})` : ''
  throw new InvalidArgumentError(
    'window.startAt',
    `must be the epoch ms a UTC ${checked} window ending after 1970-01-01 starts at${hint}, got ${String(startAt)}`,
  )
}

/** `counterKey` for a quota whose `quotaKeyPrefix` is already known (the engine's hot path). */
export function counterKeyIn(prefix: string, id: string, window?: CounterWindow): string {
  const base = `${prefix + encodeKeyPart(id)}}:usage`
  if (window === undefined) return base
  return window === 'ttl' ? `${base}:ttl` : `${base}:${window.period}:${window.startAt}`
}

/**
 * The counter keys of one quota's recent ids, so a hot id reuses one key string.
 *
 * Why: a key built afresh on every call is a new string whose hash every store lookup must
 * compute again; on the memory store's hot path that was about half the cost of a consume
 * (measured: a consume of a hot id ran at 0.55x RateLimiterMemory with fresh keys and 1.0x
 * with reused ones). Bounded: once full it starts over, so memory stays at most `max`
 * entries per quota and a stream of one-off ids costs one lookup and one insert each.
 */
export class CounterKeyCache {
  private readonly keys = new Map<string, string>()

  constructor(
    private readonly prefix: string,
    private readonly max = 16_384,
    /** `'ttl'` for a quota whose counters have a lifetime; never a period window (those change). */
    private readonly window: 'ttl' | undefined = undefined,
  ) {}

  /** The counter key of `id` (no period window). */
  get(id: string): string {
    let key = this.keys.get(id)
    if (key === undefined) {
      key = counterKeyIn(this.prefix, id, this.window)
      if (this.keys.size >= this.max) this.keys.clear()
      this.keys.set(id, key)
    }
    return key
  }
}

/**
 * Loader lock of one counter, `<counter>:lock`: the loader holds it while it reads the system of
 * record and seeds the counter, and a give-back to the missing counter deletes it (see
 * `CounterOp` in the store contract), so a load that read before the give-back cannot seed.
 *
 * @example
 * ```ts
 * lockKey(counterKey('voucher', 'SUMMER24')) // '{voucher:SUMMER24}:usage:lock'
 * ```
 */
export function lockKey(counter: string): string {
  return `${counter}:lock`
}

/**
 * Idempotency record of one operation of one (quota, id), as the engine passes it to
 * `apply()` (`ApplyOptions.idempotencyKey`). It lives in the id's hash-tag group
 * (`group`, see `hashTagGroup`), not under one window's counter, so a retry after the window
 * changed, the counter's TTL ended or the counter was reloaded still finds it. `kind` names
 * the quota's window kind (`'day'`, `'ttl'`, ...; `''` for none) so two quotas of one name
 * never share records. `fingerprint` (the cost, or a digest of a multi-quota request) makes a
 * key reused for a different request a different record, evaluated afresh instead of
 * replaying another request's result.
 */
export function idempotencyKey(
  group: string,
  operation: 'consume' | 'refund' | 'reserve' | 'all',
  key: string,
  fingerprint = '',
  kind = '',
): string {
  return `${group}:idem:${kind === '' ? '' : `${kind}:`}${operation}:${encodeKeyPart(key)}:${fingerprint}`
}

/** The window kind of a quota as its idempotency records name it: the period, `'ttl'`, or `''`. */
export function windowKind(period: Period | undefined, hasTtl: boolean): string {
  return period ?? (hasTtl ? 'ttl' : '')
}
