import { InvalidArgumentError } from '../errors.js'
import type { Quota } from '../types.js'
import { checkDurationMs, checkOptionKeys, checkTimerMs } from '../validate.js'
import { Deadlines } from './deadlines.js'
import { type HeaderOptions, resolveHeaderOptions } from './headers.js'
import { checkCost, isQuota } from './request-input.js'

/** The gate's options: what an adapter's user writes, and the settings the gate runs on once they are checked. */

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
   * or forwarded an error, or the final status is >= 400. `false` never refunds. One that
   * throws or answers a non-boolean keeps the units (the request's units are committed) and its
   * error goes to `onError`.
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

const DEFAULT_TIMEOUT_MS = 5000
const DEFAULT_STORE_DOWN_RETRY_AFTER_SECONDS = 5

/** The options of one gate, checked, with defaults filled in. */
export interface GateSettings<Req> {
  quota: Quota<any> | QuotaResolver<Req>
  id: ((req: Req) => string | Promise<string>) | undefined
  cost: QuotaGateOptions<Req>['cost']
  skip: QuotaGateOptions<Req>['skip']
  refundWhen: false | ((outcome: SettleOutcome, req: Req) => boolean | Promise<boolean>)
  onStoreError: 'deny' | 'allow'
  timeoutMs: number
  holdMs: number | undefined
  storeDownRetryAfterSeconds: number
  /** One timer for every request in flight (see `Deadlines`). */
  deadlines: Deadlines
  headerOptions: Required<HeaderOptions>
  /** The request header that carries an idempotency key, when idempotency is on. */
  idempotencyHeader: string | undefined
  /** Names of the RateLimit fields the gate writes. */
  headerNames: readonly string[]
  /** Hand a failure that cannot reach the client to `onError` (never throws). */
  report(error: unknown, req: Req): void
}

/** Check the options of `createQuotaGate` (throws `InvalidArgumentError` naming the option) and fill in defaults. */
export function resolveGateOptions<Req>(
  options: QuotaGateOptions<Req>,
  adapterKeys: readonly string[],
): GateSettings<Req> {
  checkOptionShape(options, adapterKeys)
  const refundWhen = options.refundWhen === undefined ? defaultRefundWhen : options.refundWhen
  if (refundWhen !== false && typeof refundWhen !== 'function') {
    throw new InvalidArgumentError('refundWhen', 'must be false or a function of the outcome')
  }
  const onStoreError = options.onStoreError ?? 'deny'
  if (onStoreError !== 'deny' && onStoreError !== 'allow')
    throw new InvalidArgumentError('onStoreError', "must be 'deny' or 'allow'")
  // A timer (one for every request in flight): longer than 2^31 - 1 ms it would fire at once.
  const timeoutMs = checkTimerMs('timeoutMs', options.timeoutMs ?? DEFAULT_TIMEOUT_MS)
  const holdMs = options.holdMs === undefined ? undefined : checkDurationMs('holdMs', options.holdMs)
  const storeDownRetryAfterSeconds = options.storeDownRetryAfterSeconds ?? DEFAULT_STORE_DOWN_RETRY_AFTER_SECONDS
  if (!Number.isSafeInteger(storeDownRetryAfterSeconds) || storeDownRetryAfterSeconds <= 0) {
    throw new InvalidArgumentError('storeDownRetryAfterSeconds', 'must be a positive integer (seconds)')
  }
  const headerOptions = resolveHeaderOptions(options.headers)
  return {
    quota: options.quota,
    id: options.id,
    cost: options.cost,
    skip: options.skip,
    refundWhen,
    onStoreError,
    timeoutMs,
    holdMs,
    storeDownRetryAfterSeconds,
    deadlines: new Deadlines(timeoutMs),
    headerOptions,
    idempotencyHeader: idempotencyHeaderOf(options.idempotency),
    headerNames: headerNamesOf(headerOptions),
    report: reporter(options.onError),
  }
}

/** The options object, its keys, and the request functions: present and of the right kind. */
function checkOptionShape<Req>(options: QuotaGateOptions<Req>, adapterKeys: readonly string[]): void {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'must be an object')
  checkOptionKeys('', options, [...QUOTA_GATE_OPTION_KEYS, ...adapterKeys])
  if (typeof options.headers === 'object' && options.headers !== null)
    checkOptionKeys('headers', options.headers, ['draft', 'legacy'])
  if (typeof options.idempotency === 'object' && options.idempotency !== null)
    checkOptionKeys('idempotency', options.idempotency, ['header'])
  const { quota, id, skip } = options
  if (!isQuota(quota) && typeof quota !== 'function') {
    throw new InvalidArgumentError(
      'quota',
      'must be a quota made by createQuota or a function returning { quota, id, cost? }',
    )
  }
  if (isQuota(quota) && typeof id !== 'function')
    throw new InvalidArgumentError('id', 'must be a function of the request')
  if (id !== undefined && typeof id !== 'function')
    throw new InvalidArgumentError('id', 'must be a function of the request')
  if (skip !== undefined && typeof skip !== 'function')
    throw new InvalidArgumentError('skip', 'must be a function of the request')
  if (options.cost !== undefined && typeof options.cost !== 'function') checkCost(options.cost)
}

function idempotencyHeaderOf(option: QuotaGateOptions<unknown>['idempotency']): string | undefined {
  if (option === true) return 'Idempotency-Key'
  if (typeof option === 'object' && option !== null) return option.header ?? 'Idempotency-Key'
  return undefined
}

function headerNamesOf(headerOptions: Required<HeaderOptions>): readonly string[] {
  return [
    ...(headerOptions.draft ? ['RateLimit-Policy', 'RateLimit'] : []),
    ...(headerOptions.legacy === 'ratelimit' ? ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'] : []),
    ...(headerOptions.legacy === 'x-ratelimit'
      ? ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset']
      : []),
  ]
}

function reporter<Req>(onError: QuotaGateOptions<Req>['onError']): (error: unknown, req: Req) => void {
  return (error, req) => {
    try {
      ;(onError ?? defaultOnError)(error, req)
    } catch {
      // An error reporter that throws must not crash the process.
    }
  }
}

function defaultOnError(error: unknown): void {
  const detail = error instanceof Error ? error.message : String(error)
  process.emitWarning(`andromeda quota middleware: ${detail}`, { code: 'ANDROMEDA_HTTP_SETTLE_FAILED' })
}
