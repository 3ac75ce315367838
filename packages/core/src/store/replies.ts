import { StoreError } from '../errors.js'
import type { ApplyResult } from './contract.js'

/*
 * Reading the text replies of server-side code (a Lua script, a stored routine) back into
 * contract results. Such code answers counters as decimal strings, because a Lua number or a
 * SQL driver's number may not hold 2^53 exactly; '' stands for "missing" or "no lifetime".
 */

/** A `StoreError` for a reply the store cannot read: never retryable, the same call answers alike. */
function unreadable(what: string): StoreError {
  return new StoreError(what, { retryable: false })
}

/**
 * A counter value a store read back from `source`: a decimal string of a safe integer, else a
 * `StoreError` (not retryable: the same read gives the same value) that shows what was there.
 *
 * @example
 * ```ts
 * parseCounterValue('42', 'Redis') // 42
 * parseCounterValue('4.2', 'Redis') // throws StoreError: Redis holds a counter value that is not a safe integer: "4.2"
 * ```
 */
export function parseCounterValue(raw: string | undefined, source: string): number {
  const value = Number(raw)
  if (raw === undefined || !/^-?\d+$/.test(raw) || !Number.isSafeInteger(value)) {
    throw unreadable(`${source} holds a counter value that is not a safe integer: ${JSON.stringify(raw)}`)
  }
  // '-0' reads as 0, not as JavaScript's negative zero.
  return value + 0
}

/**
 * A remaining lifetime in ms as `source` answered it: `''`, null or absent mean none; anything
 * else must be a decimal safe integer >= 0, else a `StoreError`.
 *
 * @example
 * ```ts
 * parseTtlMs('1500', 'Redis') // 1500
 * parseTtlMs('', 'Redis') // undefined
 * parseTtlMs('1.5', 'Redis') // throws StoreError: Redis answered a lifetime that is not an integer >= 0 (ms): "1.5"
 * ```
 */
export function parseTtlMs(raw: string | undefined | null, source: string): number | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined
  const ttlMs = Number(raw)
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(ttlMs)) {
    throw unreadable(`${source} answered a lifetime that is not an integer >= 0 (ms): ${JSON.stringify(raw)}`)
  }
  return ttlMs
}

/** A counter value that may be missing (`''` or absent); see `parseCounterValue`. */
export const parseOptionalCounterValue = (raw: string | undefined, source: string): number | undefined =>
  raw === undefined || raw === '' ? undefined : parseCounterValue(raw, source)

const REFUSAL_REASONS: readonly string[] = ['limit', 'floor', 'missing', 'hold']

/**
 * The refusal of an `apply` of `n` ops whose reply is laid out
 * `refused, index, reason, value1, ttl1, ...` (one value and lifetime per op, `''` for missing /
 * none), as both the Redis scripts and the SQL routines answer it: the `{ ok: false }` result of
 * `CounterStore.apply`. A reply of another shape (an index out of range, an unknown reason, a
 * value or lifetime that does not read) is a `StoreError` naming `source`.
 *
 * @example
 * ```ts
 * parseRefusal(['refused', '0', 'limit', '5', ''], 1, 'Redis')
 * // { ok: false, index: 0, reason: 'limit', values: [5], ttlMs: [undefined] }
 * ```
 */
export function parseRefusal(reply: readonly (string | undefined)[], n: number, source: string): ApplyResult {
  const index = Number(reply[1])
  const reason = reply[2] ?? ''
  if (
    reply.length < 3 + 2 * n ||
    !Number.isInteger(index) ||
    index < 0 ||
    index >= n ||
    !REFUSAL_REASONS.includes(reason)
  ) {
    throw unreadable(`${source} answered a refusal that does not read: ${JSON.stringify(reply)}`)
  }
  const values: (number | undefined)[] = new Array(n)
  const ttlMs: (number | undefined)[] = new Array(n)
  for (let i = 0; i < n; i++) {
    values[i] = parseOptionalCounterValue(reply[3 + 2 * i], source)
    ttlMs[i] = parseTtlMs(reply[4 + 2 * i], source)
  }
  return { ok: false, index, reason: reason as 'limit' | 'floor' | 'missing' | 'hold', values, ttlMs }
}
