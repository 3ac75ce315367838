/**
 * Stable error codes. They never change between versions; match on `code` or use the
 * `isInstance` guards, which also recognise errors thrown by another installed copy of core.
 */
export type AndromedaErrorCode =
  | 'ERR_QUOTA_EXCEEDED'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_STORE'
  | 'ERR_LOAD'
  | 'ERR_LOCK_TIMEOUT'
  | 'ERR_COMPENSATION'
  | 'ERR_HOLD_EXPIRED'

/** The quota options whose functions a `LoadError` may name. */
export type LoadOption = 'loadUsage' | 'limit' | 'cost' | 'ttlMs' | 'clock'

const MARKER = Symbol.for('@andromeda/core.error')

function hasMarker(value: unknown, code?: AndromedaErrorCode): value is AndromedaError {
  if (typeof value !== 'object' || value === null) return false
  const marked = (value as Record<symbol, unknown>)[MARKER] === true
  return marked && (code === undefined || (value as AndromedaError).code === code)
}

/** The `isInstance` guard of the error class whose instances carry `code`. */
function markedWith<T extends AndromedaError>(code: AndromedaErrorCode): (value: unknown) => value is T {
  return (value): value is T => hasMarker(value, code)
}

/**
 * Base class of every error andromeda throws.
 *
 * `instanceof` fails when two copies of `@andromeda/core` are installed (an adapter pinned
 * to another version); `AndromedaError.isInstance(e)` and each subclass's `isInstance` do not,
 * because they check a `Symbol.for` marker and the stable `code`.
 *
 * @example
 * ```ts
 * try { await quota.transact(id, 1, work) }
 * catch (e) { if (QuotaExceededError.isInstance(e)) return res.status(429).end(); throw e }
 * ```
 */
export class AndromedaError extends Error {
  /** Stable machine-readable code, e.g. `ERR_STORE`. */
  readonly code: AndromedaErrorCode
  declare readonly [MARKER]: true

  constructor(code: AndromedaErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.name = new.target.name
    Object.defineProperty(this, MARKER, { value: true })
  }

  /**
   * True for any andromeda error, from this or any other installed copy of core. Each subclass's
   * guard narrows to its own class; all are plain functions, safe to pass as callbacks.
   */
  static isInstance: (value: unknown) => value is AndromedaError = (value) => hasMarker(value)
}

/**
 * Thrown by `transact` (and the HTTP middleware's helpers) when the quota refused the cost.
 * `consume` never throws it: a refusal is a result (`allowed: false`).
 */
export class QuotaExceededError extends AndromedaError {
  /** Name of the quota that refused (for `transactAll`, the refused item's). */
  readonly quota: string
  /** The refused result: usage, limit, remaining, reason. */
  readonly result: import('./types.js').QuotaResult

  constructor(quota: string, result: import('./types.js').QuotaResult) {
    super('ERR_QUOTA_EXCEEDED', `quota "${quota}" refused the call (${result.reason ?? 'limit'})`)
    this.quota = quota
    this.result = result
  }

  static override isInstance: (value: unknown) => value is QuotaExceededError = markedWith('ERR_QUOTA_EXCEEDED')
}

/**
 * A caller-supplied value is out of contract (an empty id, a cost of `0.5`, a limit of `-1`).
 * Thrown before any store is touched; `argument` names the offending argument or option.
 */
export class InvalidArgumentError extends AndromedaError {
  /** Name of the argument or option that was rejected, e.g. `cost`, `limit`, `ttlMs`. */
  readonly argument: string
  /** What is wrong with it, without the name: `must be a safe integer >= 0, got -1`. The message is `<argument>: <detail>`. */
  readonly detail: string

  constructor(argument: string, detail: string) {
    super('ERR_INVALID_ARGUMENT', `${argument}: ${detail}`)
    this.argument = argument
    this.detail = detail
  }

  static override isInstance: (value: unknown) => value is InvalidArgumentError = markedWith('ERR_INVALID_ARGUMENT')
}

/**
 * The store failed (connection lost, timeout, script error). `retryable` says whether the
 * same call may succeed if sent again; a timed-out write is never retryable, because it may
 * have been applied. `cause` holds the client's own error.
 */
export class StoreError extends AndromedaError {
  /** True when retrying the same call cannot double-count (it surely was not applied). */
  readonly retryable: boolean

  constructor(message: string, options: { retryable: boolean; cause?: unknown }) {
    super('ERR_STORE', message, options)
    this.retryable = options.retryable
  }

  static override isInstance: (value: unknown) => value is StoreError = markedWith('ERR_STORE')
}

/**
 * The user's `loadUsage` threw, returned a value out of contract or did not answer in time, or
 * a `limit`, `cost` or `ttlMs` function or the quota's `clock` threw; or counters kept vanishing
 * right after being loaded. `cause` holds the function's own error.
 */
export class LoadError extends AndromedaError {
  /** The quota option whose function failed (`'loadUsage'`, `'limit'`, `'cost'`, `'ttlMs'`, `'clock'`); undefined when none did. */
  readonly option: LoadOption | undefined

  constructor(message: string, options?: { cause?: unknown; option?: LoadOption }) {
    super('ERR_LOAD', message, options)
    this.option = options?.option
  }

  static override isInstance: (value: unknown) => value is LoadError = markedWith('ERR_LOAD')
}

/** Another process held the loader lock for longer than `lock.retries x lock.retryDelayMs`. */
export class LockTimeoutError extends AndromedaError {
  /** The key of the counter whose load was waited for. */
  readonly key: string | undefined
  /** How long this process waited for the lock (ms): `lock.retries x lock.retryDelayMs`. */
  readonly waitedMs: number | undefined

  constructor(message: string, options?: { key?: string; waitedMs?: number }) {
    super('ERR_LOCK_TIMEOUT', message)
    this.key = options?.key
    this.waitedMs = options?.waitedMs
  }

  static override isInstance: (value: unknown) => value is LockTimeoutError = markedWith('ERR_LOCK_TIMEOUT')
}

/**
 * Giving units back failed after another failure (a `transact` function threw, a `consumeAll`
 * saga hit a store fault). `cause` is the first failure, `compensationError` the failed refund;
 * the units named in `pending` may still be counted and need a manual refund.
 */
export class CompensationError extends AndromedaError {
  /** The refund that failed. */
  readonly compensationError: unknown
  /** What could not be given back: quota name, id and cost of each. */
  readonly pending: ReadonlyArray<{ quota: string; id: string; cost: number }>

  constructor(
    message: string,
    options: {
      cause: unknown
      compensationError: unknown
      pending: Array<{ quota: string; id: string; cost: number }>
    },
  ) {
    super('ERR_COMPENSATION', message, { cause: options.cause })
    this.compensationError = options.compensationError
    this.pending = options.pending
  }

  static override isInstance: (value: unknown) => value is CompensationError = markedWith('ERR_COMPENSATION')
}

/**
 * A reservation was committed or released after its hold had expired: its units came back by
 * themselves (anyone may have taken them since). Commit again with a fresh `reserve` if the
 * work still needs them; a late `release` needs nothing more.
 */
export class HoldExpiredError extends AndromedaError {
  /** The quota and id of the reservation. */
  readonly quota: string
  readonly id: string
  /** `'expired'`: the hold lapsed on a live counter; `'counter-gone'`: it went with its counter (reset, expired). */
  readonly lapse: 'expired' | 'counter-gone'

  constructor(quota: string, id: string, lapse: 'expired' | 'counter-gone' = 'expired') {
    super(
      'ERR_HOLD_EXPIRED',
      `the hold on quota "${quota}" for "${id}" was gone before it was settled (${lapse}); its units are no longer held`,
    )
    this.quota = quota
    this.id = id
    this.lapse = lapse
  }

  static override isInstance: (value: unknown) => value is HoldExpiredError = markedWith('ERR_HOLD_EXPIRED')
}

/**
 * Wrap anything a store threw into a `StoreError`, keeping andromeda errors as they are.
 * Adapters call it on their client's errors; `retryable` defaults to false (safe).
 */
export function toStoreError(error: unknown, message = 'store call failed', retryable = false): AndromedaError {
  if (AndromedaError.isInstance(error)) return error
  const detail = error instanceof Error ? error.message : String(error)
  return new StoreError(`${message}: ${detail}`, { retryable, cause: error })
}
