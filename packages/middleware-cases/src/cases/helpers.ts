import { type CounterStore, createQuota, type Quota, type QuotaHooks, type QuotaOptions } from '@andromeda/core'
import { defaultRefundWhen, type SettleOutcome } from '@andromeda/core/http'
import { expect, vi } from 'vitest'
import type { RequestView } from '../harness.js'

export const PROBLEM_JSON = /^application\/problem\+json$/
export const QUOTA_EXCEEDED = 'https://iana.org/assignments/http-problem-types#quota-exceeded'

/** Records every settlement through `refundWhen`, keeping the default rule. */
export function recordOutcomes() {
  const outcomes: SettleOutcome[] = []
  const refundWhen = (outcome: SettleOutcome) => {
    outcomes.push(outcome)
    return defaultRefundWhen(outcome)
  }
  /** Wait until `count` requests settled, then one more turn so a duplicate settlement would show. */
  const settled = async (count: number) => {
    await vi.waitFor(() => expect(outcomes.length).toBeGreaterThanOrEqual(count))
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return { outcomes, refundWhen, settled }
}

const PERIOD_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const

/**
 * A quota clock held at the start of the current window: a case that counts on one window must
 * not see its counter reset because real time crossed a boundary while it ran.
 */
export function windowStartClock(period: keyof typeof PERIOD_MS): () => number {
  const startAt = Math.floor(Date.now() / PERIOD_MS[period]) * PERIOD_MS[period]
  return () => startAt
}

/** A quota of `limit` units a `period`, named `api` unless `name` says otherwise, on a clock held at the window's start. */
export function windowQuota(
  store: CounterStore,
  options: { limit: number; period: keyof typeof PERIOD_MS; name?: string; hooks?: QuotaHooks },
): Quota {
  const { name = 'api', limit, period, hooks } = options
  return createQuota({ name, store, limit, period, clock: windowStartClock(period), ...(hooks ? { hooks } : {}) })
}

/** A plain quota named `api` (no window) of `limit` units, default 3, with any other quota `options`. */
export function apiQuota(store: CounterStore, limit = 3, options: Partial<QuotaOptions> = {}): Quota {
  return createQuota({ name: 'api', store, limit, ...options })
}

/** A quota of `limit` (default 3) per hour that records what it gave back on its own. */
export function hourlyQuota(store: CounterStore, limit = 3) {
  const compensations: number[] = []
  const onCompensate = (event: { cost: number }) => void compensations.push(event.cost)
  const quota = windowQuota(store, { limit, period: 'hour', hooks: { onCompensate } })
  return { quota, compensations }
}

export const byUser =
  <Req>(req: RequestView<Req>) =>
  (r: Req) =>
    req.header(r, 'x-user') ?? 'anonymous'
