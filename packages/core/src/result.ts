import type { QuotaResult, RefusalReason } from './types.js'

/**
 * The results the engine hands out, built in one place so every result has one shape
 * (status, allowed, usage, limit, remaining, then resetAt and reason when they apply).
 */

export function grantedResult(
  status: 'granted' | 'replayed' | 'degraded',
  usage: number,
  limit: number,
  resetAt?: number,
): QuotaResult {
  const result: QuotaResult = { status, allowed: true, usage, limit, remaining: limit > usage ? limit - usage : 0 }
  if (resetAt !== undefined) result.resetAt = resetAt
  return result
}

export function refusedResult(reason: RefusalReason, usage: number, limit: number, resetAt?: number): QuotaResult {
  const result: QuotaResult = {
    status: 'refused',
    allowed: false,
    usage,
    limit,
    remaining: limit > usage ? limit - usage : 0,
    reason,
  }
  if (resetAt !== undefined) result.resetAt = resetAt
  return result
}

export function unlimitedResult(): QuotaResult {
  return {
    status: 'unlimited',
    allowed: true,
    usage: 0,
    limit: Number.POSITIVE_INFINITY,
    remaining: Number.POSITIVE_INFINITY,
  }
}

/** The same result, refused for `reason` (an item of a refused `consumeAll` that is not kept). */
export function asRefused(result: QuotaResult, reason: RefusalReason): QuotaResult {
  return refusedResult(reason, result.usage, result.limit, result.resetAt)
}

/**
 * True when the call counted units: a granted consume or reserve, or a refund that gave units
 * back. Replayed, unlimited, degraded and refused calls changed nothing.
 *
 * @example
 * ```ts
 * const result = await quota.consume(id, 3)
 * if (countsUnits(result)) metrics.add(3)
 * ```
 */
export function countsUnits(result: QuotaResult): boolean {
  return result.status === 'granted'
}
