import { HoldExpiredError, StoreError } from '../errors.js'
import { periodSeconds } from '../period.js'
import type { Quota, QuotaResult } from '../types.js'
import type { GateSettings, QuotaTarget } from './gate-options.js'

/** What charging one request left to do: its result, and how to settle it when the response ends. */
export interface Charge {
  result: QuotaResult
  /** Units charged (after a quota-level `cost` override, when held); the request's cost otherwise. */
  cost: number
  windowSeconds: number | undefined
  /** The quota's clock (epoch ms): Retry-After and the RateLimit reset are derived from it, as its `resetAt` is. */
  now(): number
  /** Settle the hold: keep the units, or give them back. Resolves the failure, if any. */
  settle(refund: boolean): Promise<unknown>
}

/** Charge within `timeoutMs` (one timer for all requests); a late answer that counted units is given back. */
export async function chargeBounded<Req>(
  settings: GateSettings<Req>,
  target: QuotaTarget<any>,
  cost: number,
  key: string | undefined,
): Promise<Charge> {
  let timedOut = false
  const attempt = charge(target, cost, key, settings.holdMs, settings.refundWhen !== false)
  attempt.then(
    (late) => {
      if (timedOut && counted(late)) void late.settle(true)
    },
    () => {},
  )
  return settings.deadlines.race(attempt, () => {
    timedOut = true
    return new StoreError(`quota "${target.quota.name}" did not answer within ${settings.timeoutMs} ms`, {
      retryable: false,
    })
  })
}

/**
 * Charge a request through the public API: a reservation, held until the response settles it
 * (commit, or release for a refund). A request whose process dies before it settles gives its
 * units back when the hold expires. Releasing also clears the idempotency record of the
 * request, so a retry with the same key is charged afresh.
 */
async function charge(
  target: QuotaTarget<any>,
  cost: number,
  key: string | undefined,
  holdMs: number | undefined,
  refunds: boolean,
): Promise<Charge> {
  if (!refunds && key === undefined) return chargeForGood(target, cost)
  const options = {
    ...(key === undefined ? {} : { idempotencyKey: key }),
    ...(target.data === undefined ? {} : { data: target.data }),
    ...(holdMs === undefined ? {} : { holdMs }),
  }
  const hold = await target.quota.reserve(target.id, cost, options)
  return charged(target, hold.result, hold.cost > 0 ? hold.cost : cost, async (refund) => {
    try {
      if (refund) await hold.release()
      else await hold.commit()
      return undefined
    } catch (error) {
      if (!HoldExpiredError.isInstance(error)) return error
      // Expired: a refund has nothing left to do; a request that outlived its hold used
      // the units, so they are charged again.
      if (refund) return undefined
      const again = await target.quota.consume(
        target.id,
        hold.cost,
        target.data === undefined ? {} : { data: target.data },
      )
      return again.allowed ? undefined : error
    }
  })
}

/**
 * Charge a request that is never refunded (`refundWhen: false`, no idempotency key): a plain
 * consume, as nothing waits to be settled (a hold would only cost a second store call). Only a
 * grant that arrives after the request timed out is given back, with a refund.
 */
async function chargeForGood(target: QuotaTarget<any>, cost: number): Promise<Charge> {
  const data = target.data === undefined ? undefined : { data: target.data }
  // Without options, a quota with constant options takes its lean path.
  const result = await (data === undefined
    ? target.quota.consume(target.id, cost)
    : target.quota.consume(target.id, cost, data))
  return charged(target, result, cost, async (refund) => {
    if (!refund) return undefined
    try {
      await target.quota.refund(target.id, cost, data)
      return undefined
    } catch (error) {
      return error
    }
  })
}

/** A `Charge` of `target`'s quota: its window and clock come from the quota. */
function charged(target: QuotaTarget<any>, result: QuotaResult, cost: number, settle: Charge['settle']): Charge {
  const period = target.quota.period
  return { result, cost, windowSeconds: period ? periodSeconds(period) : undefined, now: clockOf(target.quota), settle }
}

/** The quota's one clock; a quota of an older copy of core without one reads `Date.now`. */
function clockOf(quota: Quota<any>): () => number {
  return typeof quota.clock === 'function' ? quota.clock : Date.now
}

/** True when the charge counted units that a refund may give back. */
export function counted(charge: Charge): boolean {
  return charge.result.status === 'granted' && charge.cost > 0
}
