import { InvalidArgumentError } from '../errors.js'
import { grantedResult } from '../result.js'
import type { QuotaResult } from '../types.js'
import { MAX_IDEMPOTENCY_KEY_LENGTH } from '../validate.js'
import type { Charge } from './charge.js'
import { counted } from './charge.js'
import type { GateSettings, SettleOutcome } from './gate-options.js'
import { type HeaderAccess, type RateLimitInfo, secondsUntil, writeRateLimitHeaders } from './headers.js'
import {
  badIdempotencyKeyProblem,
  PROBLEM_CONTENT_TYPE,
  type ProblemDetails,
  quotaExceededProblem,
  storeUnavailableProblem,
} from './problem.js'
import { describe } from './request-input.js'

/** The gate's answers: grant (with the settle-once refund), 429, 503, 400, and the headers of each. */

/**
 * What an adapter's `onExceeded` is told about a refused request (Express, Koa, Fastify and
 * Hono pass the same shape).
 */
export interface QuotaRefusal {
  /** Always 429: `onExceeded` is not called for a 503 (store down) or a 400. */
  status: 429
  /** The RFC 9457 body the middleware sends unless `onExceeded` answers itself. */
  problem: ProblemDetails
  /** The quota's refused result: usage, limit, remaining, resetAt. */
  result: QuotaResult
  /** Seconds until the quota resets, when known (also in `Retry-After`). */
  retryAfterSeconds?: number
}

/** The middleware's answer for one request, before the downstream handler runs. */
export type GateDecision =
  | { action: 'skip' }
  | {
      action: 'grant'
      /** The quota's result; degraded or unlimited results carry no headers and are never refunded. */
      result: QuotaResult
      /** Write the RateLimit fields (appending to earlier middlewares'); no-op once headers were sent. */
      writeHeaders(access: HeaderAccess): void
      /** Names of the headers this decision writes. */
      headerNames: readonly string[]
      /** Decide the refund once; later calls do nothing. Never rejects (failures go to `onError`). */
      settle(outcome: SettleOutcome): Promise<void>
    }
  | {
      action: 'refuse'
      /** 429 over the limit, 503 store down, 400 unusable `Idempotency-Key`. */
      status: 400 | 429 | 503
      problem: ProblemDetails
      /** `problem` as JSON: the body to send, with `contentType`, unless `onExceeded` answered itself. */
      body: string
      /** `application/problem+json` (RFC 9457 section 3). */
      contentType: typeof PROBLEM_CONTENT_TYPE
      /** The refused result (absent for a 400, or a store that did not answer). */
      result?: QuotaResult
      /** What `onExceeded` is told: present on a 429 only (over the limit), absent on a 400 or a 503. */
      refusal?: QuotaRefusal
      /**
       * Seconds until the client may try again, sent as `Retry-After`: until the quota resets
       * (a 429, when the reset time is known) or `storeDownRetryAfterSeconds` (a 503).
       */
      retryAfterSeconds?: number
      writeHeaders(access: HeaderAccess): void
      headerNames: readonly string[]
    }

/** A refusal's body: the problem, and the same as the JSON to send. */
function problemAnswer(problem: ProblemDetails): {
  problem: ProblemDetails
  body: string
  contentType: typeof PROBLEM_CONTENT_TYPE
} {
  return { problem, body: JSON.stringify(problem), contentType: PROBLEM_CONTENT_TYPE }
}

/** A 400: the request's idempotency key is unusable. */
export function badIdempotencyKey(header: string): GateDecision {
  return {
    action: 'refuse',
    status: 400,
    ...problemAnswer(badIdempotencyKeyProblem(header, MAX_IDEMPOTENCY_KEY_LENGTH)),
    writeHeaders: () => {},
    headerNames: [],
  }
}

/** A 429: the quota refused the request's cost. */
export function overLimit<Req>(settings: GateSettings<Req>, charged: Charge, policy: string): GateDecision {
  const { result } = charged
  const resetSeconds = result.resetAt === undefined ? undefined : secondsUntil(result.resetAt, charged.now())
  // A cost above the limit can never be granted: no point telling the client when to retry.
  const retryAfterSeconds = charged.cost > result.limit ? undefined : resetSeconds
  const info = rateLimitInfo(policy, result, charged.windowSeconds, resetSeconds)
  const retryAfter = retryAfterSeconds === undefined ? {} : { retryAfterSeconds }
  const problem = quotaExceededProblem({
    policy,
    limit: result.limit,
    remaining: result.remaining,
    cost: charged.cost,
    ...retryAfter,
  })
  return {
    action: 'refuse',
    status: 429,
    result,
    ...problemAnswer(problem),
    refusal: { status: 429, problem, result, ...retryAfter },
    ...retryAfter,
    headerNames: retryAfterSeconds === undefined ? settings.headerNames : [...settings.headerNames, 'Retry-After'],
    writeHeaders(access) {
      if (access.sent()) return
      writeRateLimitHeaders(access, info, settings.headerOptions)
      if (retryAfterSeconds !== undefined) access.set('Retry-After', String(retryAfterSeconds))
    },
  }
}

/** A 503 that tells the client when to come back (RFC 9110 section 10.2.3). */
export function storeDown<Req>(settings: GateSettings<Req>, policy: string, result?: QuotaResult): GateDecision {
  const retryAfterSeconds = settings.storeDownRetryAfterSeconds
  return {
    action: 'refuse',
    status: 503,
    ...problemAnswer(storeUnavailableProblem(policy, retryAfterSeconds)),
    ...(result ? { result } : {}),
    retryAfterSeconds,
    writeHeaders(access) {
      if (!access.sent()) access.set('Retry-After', String(retryAfterSeconds))
    },
    headerNames: ['Retry-After'],
  }
}

/** What a request is let through with when the store is down and `onStoreError` is `'allow'`: nothing counted. */
export function degradedCharge(cost: number): Charge {
  const limit = Number.POSITIVE_INFINITY
  return {
    result: grantedResult('degraded', 0, limit),
    cost,
    windowSeconds: undefined,
    now: Date.now,
    settle: async () => undefined,
  }
}

/** A grant: the headers of a counted result, and the settle-once refund decision. */
export function grant<Req>(settings: GateSettings<Req>, charged: Charge, req: Req, policy: string): GateDecision {
  const { result } = charged
  // Nothing was counted for an unlimited id or a degraded pass: no policy to advertise.
  const advertised = (result.status === 'granted' || result.status === 'replayed') && Number.isFinite(result.limit)
  const resetSeconds = result.resetAt === undefined ? undefined : secondsUntil(result.resetAt, charged.now())
  const info = rateLimitInfo(policy, result, charged.windowSeconds, resetSeconds)
  let settled = false
  return {
    action: 'grant',
    result,
    headerNames: advertised ? settings.headerNames : [],
    writeHeaders(access) {
      if (advertised) writeRateLimitHeaders(access, info, settings.headerOptions)
    },
    async settle(outcome) {
      if (settled) return
      settled = true
      if (!counted(charged)) return
      // Every granted request settles its hold: committed, or released for a refund.
      const refund = await refundDecision(settings, outcome, req)
      const failure = await charged.settle(refund)
      if (failure !== undefined) settings.report(failure, req)
    },
  }
}

/** Ask `refundWhen`; a throw or a wrong-typed answer is reported and counts as "keep the units". */
async function refundDecision<Req>(settings: GateSettings<Req>, outcome: SettleOutcome, req: Req): Promise<boolean> {
  const { refundWhen } = settings
  if (refundWhen === false) return false
  try {
    const answer: unknown = await refundWhen(outcome, req)
    if (typeof answer !== 'boolean')
      throw new InvalidArgumentError(
        'refundWhen',
        `must return a boolean (or a promise of one), got ${describe(answer)}`,
      )
    return answer
  } catch (error) {
    settings.report(error, req)
    return false
  }
}

function rateLimitInfo(
  policy: string,
  result: QuotaResult,
  windowSeconds: number | undefined,
  resetSeconds: number | undefined,
): RateLimitInfo {
  return {
    policy,
    limit: result.limit,
    remaining: result.remaining,
    ...(resetSeconds === undefined ? {} : { resetSeconds }),
    ...(result.resetAt === undefined ? {} : { resetAt: result.resetAt }),
    ...(windowSeconds === undefined ? {} : { windowSeconds }),
  }
}
