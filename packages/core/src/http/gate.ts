import { HoldExpiredError, InvalidArgumentError, StoreError } from '../errors.js'
import { periodSeconds } from '../period.js'
import { grantedResult } from '../result.js'
import type { Quota, QuotaResult } from '../types.js'
import { checkDurationMs, checkOptionKeys, checkTimerMs } from '../validate.js'
import { Deadlines } from './deadlines.js'
import {
  type HeaderAccess,
  type HeaderOptions,
  type RateLimitInfo,
  resolveHeaderOptions,
  secondsUntil,
  writeRateLimitHeaders,
} from './headers.js'
import { badIdempotencyKeyProblem, type ProblemDetails, quotaExceededProblem, storeUnavailableProblem } from './problem.js'

/** What a resolver returns for one request: which quota, which id, what it costs. */
export interface QuotaTarget<D = unknown> {
  quota: Quota<D>
  /** The counter's id (a user, an API key, a voucher code). */
  id: string
  /** Units this request costs; defaults to the middleware's `cost` option, then 1. */
  cost?: number
  /** Passed to the quota's option functions as `ctx.data`. */
  data?: D
}

/** Picks the quota for a request; `null`, `undefined` or `false` skips the request. */
export type QuotaResolver<Req> = (
  req: Req,
) => QuotaTarget<any> | null | undefined | false | Promise<QuotaTarget<any> | null | undefined | false>

/** How a granted request ended, as seen by the middleware when it settles. */
export interface SettleOutcome {
  /** Final status code of the response. */
  status: number
  /** The error the downstream handler threw or forwarded, when the middleware saw one. */
  error?: unknown
  /** The connection closed before the response was complete (the client went away). */
  aborted: boolean
}

/**
 * The default refund rule: give the units back when the handler failed (an error, or a final
 * status >= 400). A client that went away while a handler succeeded is not refunded: the work
 * may be done.
 */
export function defaultRefundWhen(outcome: SettleOutcome): boolean {
  return outcome.error !== undefined || outcome.status >= 400
}

/** Options shared by `expressQuota` and `koaQuota`; `Req` is the request (Express) or context (Koa). */
export interface QuotaGateOptions<Req> {
  /**
   * The quota every request consumes from (then `id` is required), or a resolver returning
   * `{ quota, id, cost?, data? }` per request, or nothing to let the request through uncounted.
   */
  quota: Quota<any> | QuotaResolver<Req>
  /** The id to count a request under (user, API key, IP). Required with a plain `quota`. */
  id?: (req: Req) => string | Promise<string>
  /** Units one request costs: a safe integer >= 0 or a function of the request. Default 1. */
  cost?: number | ((req: Req) => number | Promise<number>)
  /** Return true to let a request through without counting it or setting headers. */
  skip?: (req: Req) => boolean | Promise<boolean>
  /**
   * When a granted request gets its units back. Default `defaultRefundWhen`: the handler threw
   * or forwarded an error, or the final status is >= 400. `false` never refunds.
   */
  refundWhen?: false | ((outcome: SettleOutcome, req: Req) => boolean | Promise<boolean>)
  /** Which RateLimit header fields to write: `true` (default, the draft's), `false`, or `HeaderOptions`. */
  headers?: boolean | HeaderOptions
  /**
   * When the store fails (or does not answer within `timeoutMs`) and the quota's own
   * `onStoreError` is `'throw'`: `'deny'` answers 503 (never 429), `'allow'` lets the request
   * through uncounted. A quota created with `onStoreError: 'deny'` or `'allow'` decides itself.
   * Default `'deny'`.
   */
  onStoreError?: 'deny' | 'allow'
  /**
   * Charge a request once per `Idempotency-Key` request header (per quota and id): a repeat is
   * let through without a new charge while the quota keeps the record (`idempotencyTtlMs`).
   * `true` reads `Idempotency-Key`; `{ header }` names another header. Off by default.
   */
  idempotency?: boolean | { header?: string }
  /** Longest wait for the quota (ms) before treating the store as down. Default 5000. */
  timeoutMs?: number
  /**
   * How long a granted request holds its units until its response settles them (ms): should
   * the process die first, they come back by themselves then. A request that runs longer has
   * them charged again when it finishes. Default: the quota's `holdMs` (60 s).
   */
  holdMs?: number
  /**
   * `Retry-After` (whole seconds, >= 1) on the 503 answered when the store is down: when a
   * client may try again. Default 5.
   */
  storeDownRetryAfterSeconds?: number
  /** Failures that cannot reach the client: a refund that failed, a `refundWhen` that threw. Default: a process warning. */
  onError?: (error: unknown, req: Req) => void
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
      /** The refused result (absent for a 400, or a store that did not answer). */
      result?: QuotaResult
      /**
       * Seconds until the client may try again, sent as `Retry-After`: until the quota resets
       * (a 429, when the reset time is known) or `storeDownRetryAfterSeconds` (a 503).
       */
      retryAfterSeconds?: number
      writeHeaders(access: HeaderAccess): void
      headerNames: readonly string[]
    }

/** Decides each request: `begin` consumes and returns what to answer. Adapters are thin wrappers. */
export interface QuotaGate<Req> {
  begin(req: Req, requestHeaders: Readonly<Record<string, string | string[] | undefined>>): Promise<GateDecision>
}

/** Every option of `QuotaGateOptions`; an adapter adds its own (`onExceeded`, ...) when it creates the gate. */
export const QUOTA_GATE_OPTION_KEYS: readonly string[] = [
  'quota',
  'id',
  'cost',
  'skip',
  'refundWhen',
  'headers',
  'onStoreError',
  'idempotency',
  'timeoutMs',
  'holdMs',
  'storeDownRetryAfterSeconds',
  'onError',
]

/** Longest accepted idempotency key (the engine's limit). */
const MAX_IDEMPOTENCY_KEY_LENGTH = 1024
const DEFAULT_TIMEOUT_MS = 5000
const DEFAULT_STORE_DOWN_RETRY_AFTER_SECONDS = 5

interface Charge {
  result: QuotaResult
  /** Units charged (after a quota-level `cost` override, when held); the request's cost otherwise. */
  cost: number
  windowSeconds: number | undefined
  /** The quota's clock (epoch ms): Retry-After and the RateLimit reset are derived from it, as its `resetAt` is. */
  now(): number
  /** Settle the hold: keep the units, or give them back. Resolves the failure, if any. */
  settle(refund: boolean): Promise<unknown>
}

/**
 * Charge a request through the public API: a reservation, held until the response settles it
 * (commit, or release for a refund). A request whose process dies before it settles gives its
 * units back when the hold expires. Releasing also clears the idempotency record of the
 * request, so a retry with the same key is charged afresh.
 */
async function charge(target: QuotaTarget<any>, cost: number, key: string | undefined, holdMs: number | undefined, refunds: boolean): Promise<Charge> {
  if (!refunds && key === undefined) return chargeForGood(target, cost)
  const options = {
    ...(key === undefined ? {} : { idempotencyKey: key }),
    ...(target.data === undefined ? {} : { data: target.data }),
    ...(holdMs === undefined ? {} : { holdMs }),
  }
  const hold = await target.quota.reserve(target.id, cost, options)
  const period = target.quota.period
  return {
    result: hold.result,
    cost: hold.cost > 0 ? hold.cost : cost,
    windowSeconds: period ? periodSeconds(period) : undefined,
    now: clockOf(target.quota),
    settle: async (refund) => {
      try {
        if (refund) await hold.release()
        else await hold.commit()
        return undefined
      } catch (error) {
        if (!HoldExpiredError.isInstance(error)) return error
        // Expired: a refund has nothing left to do; a request that outlived its hold used
        // the units, so they are charged again.
        if (refund) return undefined
        const again = await target.quota.consume(target.id, hold.cost, target.data === undefined ? {} : { data: target.data })
        return again.allowed ? undefined : error
      }
    },
  }
}

/**
 * Charge a request that is never refunded (`refundWhen: false`, no idempotency key): a plain
 * consume, as nothing waits to be settled (a hold would only cost a second store call). Only a
 * grant that arrives after the request timed out is given back, with a refund.
 */
async function chargeForGood(target: QuotaTarget<any>, cost: number): Promise<Charge> {
  const data = target.data === undefined ? undefined : { data: target.data }
  // Without options, a quota with constant options takes its lean path.
  const result = await (data === undefined ? target.quota.consume(target.id, cost) : target.quota.consume(target.id, cost, data))
  const period = target.quota.period
  return {
    result,
    cost,
    windowSeconds: period ? periodSeconds(period) : undefined,
    now: clockOf(target.quota),
    settle: async (refund) => {
      if (!refund) return undefined
      try {
        await target.quota.refund(target.id, cost, data)
        return undefined
      } catch (error) {
        return error
      }
    },
  }
}

/** The quota's one clock; a quota of an older copy of core without one reads `Date.now`. */
function clockOf(quota: Quota<any>): () => number {
  return typeof quota.clock === 'function' ? quota.clock : Date.now
}

/** True when the charge counted units that a refund may give back. */
function counted(charge: Charge): boolean {
  return charge.result.status === 'granted' && charge.cost > 0
}

function isQuota(value: unknown): value is Quota<any> {
  return typeof value === 'object' && value !== null && typeof (value as Quota).reserve === 'function'
}

function checkCost(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError('cost', `must be a safe integer >= 0, got ${describe(value)}`)
  }
  return value
}

/** A value as an error message shows it: a promise is named as such (a sync option given an async function). */
function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof (value as PromiseLike<unknown> | undefined)?.then === 'function') return 'a promise'
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`
}

/** The id a request is counted under: a string (the quota checks the rest). */
function checkId(value: unknown, option = 'id'): string {
  if (typeof value !== 'string') throw new InvalidArgumentError(option, `must give a string id, got ${describe(value)}`)
  return value
}

function headerValue(headers: Readonly<Record<string, string | string[] | undefined>>, name: string): string | undefined {
  const raw = headers[name.toLowerCase()]
  return Array.isArray(raw) ? raw[0] : raw
}

/** The `Idempotency-Key` field is a Structured Field String; bare values are accepted too. */
function parseIdempotencyKey(raw: string): string | undefined {
  let value = raw.trim()
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1).replace(/\\(["\\])/g, '$1')
  return value.length > 0 && value.length <= MAX_IDEMPOTENCY_KEY_LENGTH ? value : undefined
}

function defaultOnError(error: unknown): void {
  const detail = error instanceof Error ? error.message : String(error)
  process.emitWarning(`andromeda quota middleware: ${detail}`, { code: 'ANDROMEDA_HTTP_SETTLE_FAILED' })
}

/**
 * Build the framework-neutral core of the quota middleware. `expressQuota` and `koaQuota`
 * wrap it; use it to write an adapter for another framework.
 *
 * Options are validated now and throw `InvalidArgumentError` naming the option; keys that are
 * neither `QuotaGateOptions` nor one of `adapterKeys` (the adapter's own options, e.g.
 * `onExceeded`) are refused, naming the key and the nearest known one. `timeoutMs` is a timer:
 * at most 2^31 - 1 ms. The options' functions may be async; a wrong-typed answer (`skip` not a
 * boolean, `id` not a string, `cost` not a count, a resolver's answer not `{ quota, id }`) is
 * an `InvalidArgumentError` naming the option, forwarded like any error of the request.
 *
 * @example
 * ```ts
 * const gate = createQuotaGate({ quota: api, id: (req: IncomingMessage) => String(req.headers['x-api-key']) })
 * const decision = await gate.begin(req, req.headers)
 * ```
 */
export function createQuotaGate<Req>(options: QuotaGateOptions<Req>, adapterKeys: readonly string[] = []): QuotaGate<Req> {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'must be an object')
  checkOptionKeys('', options, [...QUOTA_GATE_OPTION_KEYS, ...adapterKeys])
  if (typeof options.headers === 'object' && options.headers !== null) checkOptionKeys('headers', options.headers, ['draft', 'legacy'])
  if (typeof options.idempotency === 'object' && options.idempotency !== null) checkOptionKeys('idempotency', options.idempotency, ['header'])
  const { quota, id, skip } = options
  if (!isQuota(quota) && typeof quota !== 'function') {
    throw new InvalidArgumentError('quota', 'must be a quota made by createQuota or a function returning { quota, id, cost? }')
  }
  if (isQuota(quota) && typeof id !== 'function') throw new InvalidArgumentError('id', 'must be a function of the request')
  if (id !== undefined && typeof id !== 'function') throw new InvalidArgumentError('id', 'must be a function of the request')
  if (skip !== undefined && typeof skip !== 'function') throw new InvalidArgumentError('skip', 'must be a function of the request')
  if (options.cost !== undefined && typeof options.cost !== 'function') checkCost(options.cost)
  const refundWhen = options.refundWhen === undefined ? defaultRefundWhen : options.refundWhen
  if (refundWhen !== false && typeof refundWhen !== 'function') {
    throw new InvalidArgumentError('refundWhen', 'must be false or a function of the outcome')
  }
  const onStoreError = options.onStoreError ?? 'deny'
  if (onStoreError !== 'deny' && onStoreError !== 'allow') throw new InvalidArgumentError('onStoreError', "must be 'deny' or 'allow'")
  // A timer (one for every request in flight): longer than 2^31 - 1 ms it would fire at once.
  const timeoutMs = checkTimerMs('timeoutMs', options.timeoutMs ?? DEFAULT_TIMEOUT_MS)
  const holdMs = options.holdMs === undefined ? undefined : checkDurationMs('holdMs', options.holdMs)
  const storeDownRetryAfterSeconds = options.storeDownRetryAfterSeconds ?? DEFAULT_STORE_DOWN_RETRY_AFTER_SECONDS
  if (!Number.isSafeInteger(storeDownRetryAfterSeconds) || storeDownRetryAfterSeconds <= 0) {
    throw new InvalidArgumentError('storeDownRetryAfterSeconds', 'must be a positive integer (seconds)')
  }
  const deadlines = new Deadlines(timeoutMs)
  const headerOptions = resolveHeaderOptions(options.headers)
  const idempotencyHeader =
    options.idempotency === true
      ? 'Idempotency-Key'
      : typeof options.idempotency === 'object' && options.idempotency !== null
        ? (options.idempotency.header ?? 'Idempotency-Key')
        : undefined
  const headerNames = [
    ...(headerOptions.draft ? ['RateLimit-Policy', 'RateLimit'] : []),
    ...(headerOptions.legacy === 'ratelimit' ? ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'] : []),
    ...(headerOptions.legacy === 'x-ratelimit' ? ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset'] : []),
  ]

  const report = (error: unknown, req: Req) => {
    try {
      ;(options.onError ?? defaultOnError)(error, req)
    } catch {
      // An error reporter that throws must not crash the process.
    }
  }

  async function resolveTarget(req: Req): Promise<QuotaTarget<any> | undefined> {
    if (isQuota(quota)) return { quota, id: checkId(await id!(req)) }
    const target: unknown = await quota(req)
    if (target === null || target === undefined || target === false) return undefined
    if (typeof target !== 'object' || !isQuota((target as QuotaTarget).quota)) {
      throw new InvalidArgumentError('quota', `the resolver must return { quota, id } with a quota made by createQuota (or null to skip), got ${describe(target)}`)
    }
    checkId((target as QuotaTarget).id, 'quota')
    return target as QuotaTarget<any>
  }

  async function resolveCost(req: Req, target: QuotaTarget<any>): Promise<number> {
    if (target.cost !== undefined) return checkCost(target.cost)
    if (typeof options.cost === 'function') return checkCost(await options.cost(req))
    return options.cost ?? 1
  }

  /** Charge within `timeoutMs`; a late answer that counted units is given back. */
  /** Charge within `timeoutMs` (one timer for all requests); a late answer that counted units is given back. */
  async function chargeBounded(target: QuotaTarget<any>, cost: number, key: string | undefined): Promise<Charge> {
    let timedOut = false
    const attempt = charge(target, cost, key, holdMs, refundWhen !== false)
    attempt.then(
      (late) => {
        if (timedOut && counted(late)) void late.settle(true)
      },
      () => {},
    )
    return deadlines.race(attempt, () => {
      timedOut = true
      return new StoreError(`quota "${target.quota.name}" did not answer within ${timeoutMs} ms`, { retryable: false })
    })
  }

  async function shouldSkip(req: Req): Promise<boolean> {
    if (!skip) return false
    const answer: unknown = await skip(req)
    if (typeof answer !== 'boolean') throw new InvalidArgumentError('skip', `must return a boolean (or a promise of one), got ${describe(answer)}`)
    return answer
  }

  async function begin(req: Req, requestHeaders: Readonly<Record<string, string | string[] | undefined>>): Promise<GateDecision> {
    if (await shouldSkip(req)) return { action: 'skip' }
    const target = await resolveTarget(req)
    if (!target) return { action: 'skip' }
    const cost = await resolveCost(req, target)
    const policy = target.quota.name

    let key: string | undefined
    if (idempotencyHeader !== undefined) {
      const raw = headerValue(requestHeaders, idempotencyHeader)
      if (raw !== undefined) {
        key = parseIdempotencyKey(raw)
        if (key === undefined) {
          return {
            action: 'refuse',
            status: 400,
            problem: badIdempotencyKeyProblem(idempotencyHeader, MAX_IDEMPOTENCY_KEY_LENGTH),
            writeHeaders: () => {},
            headerNames: [],
          }
        }
      }
    }

    let charged: Charge
    try {
      charged = await chargeBounded(target, cost, key)
    } catch (error) {
      if (!StoreError.isInstance(error)) throw error
      if (onStoreError === 'allow') {
        const limit = Number.POSITIVE_INFINITY
        return grant(
          { result: grantedResult('degraded', 0, limit), cost, windowSeconds: undefined, now: Date.now, settle: async () => undefined },
          req,
          policy,
        )
      }
      return storeDown(policy)
    }
    const { result } = charged
    if (result.allowed) return grant(charged, req, policy)
    if (result.reason === 'store') return storeDown(policy, result)

    const now = charged.now()
    const resetSeconds = result.resetAt === undefined ? undefined : secondsUntil(result.resetAt, now)
    // A cost above the limit can never be granted: no point telling the client when to retry.
    const retryAfterSeconds = charged.cost > result.limit ? undefined : resetSeconds
    const info = rateLimitInfo(policy, result, charged.windowSeconds, resetSeconds)
    return {
      action: 'refuse',
      status: 429,
      result,
      problem: quotaExceededProblem({
        policy,
        limit: result.limit,
        remaining: result.remaining,
        cost: charged.cost,
        ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
      }),
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
      headerNames: retryAfterSeconds === undefined ? headerNames : [...headerNames, 'Retry-After'],
      writeHeaders(access) {
        if (access.sent()) return
        writeRateLimitHeaders(access, info, headerOptions)
        if (retryAfterSeconds !== undefined) access.set('Retry-After', String(retryAfterSeconds))
      },
    }
  }

  /** A 503 that tells the client when to come back (RFC 9110 section 10.2.3). */
  function storeDown(policy: string, result?: QuotaResult): GateDecision {
    const retryAfterSeconds = storeDownRetryAfterSeconds
    return {
      action: 'refuse',
      status: 503,
      problem: storeUnavailableProblem(policy, retryAfterSeconds),
      ...(result ? { result } : {}),
      retryAfterSeconds,
      writeHeaders(access) {
        if (!access.sent()) access.set('Retry-After', String(retryAfterSeconds))
      },
      headerNames: ['Retry-After'],
    }
  }

  function grant(charged: Charge, req: Req, policy: string): GateDecision {
    const { result } = charged
    // Nothing was counted for an unlimited id or a degraded pass: no policy to advertise.
    const advertised = (result.status === 'granted' || result.status === 'replayed') && Number.isFinite(result.limit)
    const resetSeconds = result.resetAt === undefined ? undefined : secondsUntil(result.resetAt, charged.now())
    const info = rateLimitInfo(policy, result, charged.windowSeconds, resetSeconds)
    let settled = false
    return {
      action: 'grant',
      result,
      headerNames: advertised ? headerNames : [],
      writeHeaders(access) {
        if (advertised) writeRateLimitHeaders(access, info, headerOptions)
      },
      async settle(outcome) {
        if (settled) return
        settled = true
        if (!counted(charged)) return
        // Every granted request settles its hold: committed, or released for a refund.
        let refund = false
        if (refundWhen !== false) {
          try {
            const answer: unknown = await refundWhen(outcome, req)
            if (typeof answer !== 'boolean') throw new InvalidArgumentError('refundWhen', `must return a boolean (or a promise of one), got ${describe(answer)}`)
            refund = answer
          } catch (error) {
            report(error, req)
          }
        }
        const failure = await charged.settle(refund)
        if (failure !== undefined) report(failure, req)
      },
    }
  }

  return { begin }
}

function rateLimitInfo(policy: string, result: QuotaResult, windowSeconds: number | undefined, resetSeconds: number | undefined): RateLimitInfo {
  return {
    policy,
    limit: result.limit,
    remaining: result.remaining,
    ...(resetSeconds === undefined ? {} : { resetSeconds }),
    ...(result.resetAt === undefined ? {} : { resetAt: result.resetAt }),
    ...(windowSeconds === undefined ? {} : { windowSeconds }),
  }
}
