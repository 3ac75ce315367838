import { StoreError } from '../errors.js'
import type { ApplyResult } from './contract.js'

/*
 * Reading the text replies of server-side code (a Lua script, a stored routine) back into
 * contract results. Such code answers counters as decimal strings, because a Lua number or a
 * SQL driver's number may not hold 2^53 exactly; '' stands for "missing" or "no lifetime".
 */

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
    throw new StoreError(`${source} holds a counter value that is not a safe integer: ${JSON.stringify(raw)}`, {
      retryable: false,
    })
  }
  return value
}

/** A remaining lifetime in ms as the server wrote it; `''`, null or absent: none. */
export const parseTtlMs = (raw: string | undefined | null): number | undefined =>
  raw === undefined || raw === null || raw === '' ? undefined : Number(raw)

/** A counter value that may be missing (`''` or absent); see `parseCounterValue`. */
export const parseOptionalCounterValue = (raw: string | undefined, source: string): number | undefined =>
  raw === undefined || raw === '' ? undefined : parseCounterValue(raw, source)

/**
 * The refusal of an `apply` whose reply is laid out `refused, index, reason, value1, ttl1, ...`
 * (one value and lifetime per op, `''` for missing / none), as both the Redis scripts and the SQL
 * routines answer it: the `{ ok: false }` result of `CounterStore.apply`.
 *
 * @example
 * ```ts
 * parseRefusal(['refused', '0', 'limit', '5', ''], 1, 'Redis')
 * // { ok: false, index: 0, reason: 'limit', values: [5], ttlMs: [undefined] }
 * ```
 */
export function parseRefusal(reply: readonly (string | undefined)[], n: number, source: string): ApplyResult {
  const values: (number | undefined)[] = new Array(n)
  const ttlMs: (number | undefined)[] = new Array(n)
  for (let i = 0; i < n; i++) {
    values[i] = parseOptionalCounterValue(reply[3 + 2 * i], source)
    ttlMs[i] = parseTtlMs(reply[4 + 2 * i])
  }
  const reason = reply[2] as 'limit' | 'floor' | 'missing' | 'hold'
  return { ok: false, index: Number(reply[1]), reason, values, ttlMs }
}
