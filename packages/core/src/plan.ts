import { LRUCache } from 'lru-cache'
import type { QuotaConfig } from './config.js'
import { InvalidArgumentError, LoadError, type LoadOption } from './errors.js'
import { CounterKeyCache, counterKeyIn, encodeKeyPart, quotaKeyPrefix, windowKind } from './keys.js'
import { periodWindow } from './period.js'
import type { QuotaContext } from './types.js'
import { checkCount, checkDurationMs, checkString, MAX_ID_LENGTH } from './validate.js'

/** Everything one call resolved before touching the store. */
export interface Plan<D = unknown> {
  id: string
  cost: number
  /** null: this id has no quota. */
  limit: number | null
  key: string
  ttlMs: number | undefined
  /** End of the current period window (periodic quotas). */
  periodEndAt: number | undefined
  ctx: QuotaContext<D>
  /**
   * Clock reading when the plan was made (quotas that use time); otherwise the clock is read
   * only when a result needs it (resetAt of a counter with a TTL).
   */
  now: number | undefined
}

/** What the hot path needs of a quota whose options are all constants. */
export interface ConstantOptions {
  limit: number
  ttlMs: number | undefined
  ifMissing: 'create' | 'report'
}

/** The LoadError of a user's option function that threw `error`. */
function optionFailed(option: LoadOption, error: unknown): LoadError {
  const detail = error instanceof Error ? error.message : String(error)
  return new LoadError(`the ${option} function failed: ${detail}`, { cause: error, option })
}

/** Run a user's option function; whatever it throws becomes a LoadError naming the option. */
export async function callOption<T>(option: LoadOption, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (error) {
    throw optionFailed(option, error)
  }
}

/**
 * Resolves a call's input into a `Plan`: validation, the quota's clock, its period window, the
 * counter key, and the option functions (cost, limit, ttlMs). Touches no store.
 */
export class Planner<D> {
  /** `{<name>:`, the start of every key of this quota, built once. */
  readonly keyPrefix: string
  /** Set when cost, limit and ttlMs are constants and there is no period: the hot path applies. */
  readonly constant: ConstantOptions | undefined
  /**
   * A period or a ttlMs: such a quota reads its clock (and checks it) before every call.
   * Others read it only when a counter reports a lifetime (resetAt), which saves a clock
   * read per consume on the hot path.
   */
  private readonly usesTime: boolean
  /** How this quota's idempotency records name its window kind (see `windowKind`). */
  readonly windowKind: string
  /** Counter keys of recent ids (quotas without a period). */
  readonly counterKeys: CounterKeyCache
  private readonly limitCache: LRUCache<string, { limit: number | null }> | undefined

  constructor(private readonly config: QuotaConfig<D>) {
    this.keyPrefix = quotaKeyPrefix(config.name)
    this.counterKeys = new CounterKeyCache(this.keyPrefix, undefined, config.ttlMs === undefined ? undefined : 'ttl')
    this.windowKind = windowKind(config.period, config.ttlMs !== undefined)
    this.usesTime = config.period !== undefined || config.ttlMs !== undefined
    const { cost, limit, ttlMs, period, loadUsage } = config
    this.constant =
      cost === undefined && typeof limit === 'number' && typeof ttlMs !== 'function' && period === undefined
        ? { limit, ttlMs, ifMissing: loadUsage ? 'report' : 'create' }
        : undefined
    this.limitCache =
      config.limitCacheTtlMs !== undefined && typeof config.limit === 'function'
        ? new LRUCache({ max: 10_000, ttl: config.limitCacheTtlMs })
        : undefined
  }

  /** The hash-tag group of `id`'s keys (`hashTagGroup(name, id)`): where its idempotency records live. */
  groupOf(id: string): string {
    return `${this.keyPrefix + encodeKeyPart(id)}}`
  }

  /**
   * The quota's clock, checked: every time the engine derives comes from it. A clock that throws
   * is a LoadError naming `clock`; one that answers no epoch ms, an InvalidArgumentError.
   */
  now(): number {
    let now: number
    try {
      now = this.config.clock()
    } catch (error) {
      throw optionFailed('clock', error)
    }
    if (!Number.isSafeInteger(now) || now < 0)
      throw new InvalidArgumentError('clock', `must return epoch ms, got ${String(now)}`)
    return now
  }

  /**
   * Validate a call's input and resolve cost, limit, key and lifetime. Synchronous unless an
   * option is a function (the hot path of constant options stays cheap).
   */
  plan(id: string, requestedCost: number, data: D | undefined): Plan<D> | Promise<Plan<D>> {
    checkString('id', id, MAX_ID_LENGTH)
    checkCount('cost', requestedCost)
    const { cost, limit, ttlMs, period, name } = this.config
    // Time is read before the store only by quotas that use it; see `usesTime`.
    const now = this.usesTime ? this.now() : undefined
    const window = period ? periodWindow(period, now!) : undefined
    const ctx: QuotaContext<D> = window ? { quota: name, data, periodStartAt: window.startAt } : { quota: name, data }
    const key = window
      ? counterKeyIn(this.keyPrefix, id, { period: period!, startAt: window.startAt })
      : this.counterKeys.get(id)
    const periodTtl = window ? window.endAt - now! : undefined
    if (cost === undefined && typeof limit !== 'function' && typeof ttlMs !== 'function') {
      return makePlan(id, requestedCost, limit, key, window ? periodTtl : ttlMs, window?.endAt, ctx, now)
    }
    return (async () =>
      makePlan(
        id,
        cost ? checkCount('cost', await callOption('cost', () => cost(id, requestedCost, ctx))) : requestedCost,
        await this.resolveLimit(id, ctx),
        key,
        window ? periodTtl : await this.resolveTtl(id, ctx),
        window?.endAt,
        ctx,
        now,
      ))()
  }

  /** A plan for the hot path's call (constant options, no data), made only when the answer needs one. */
  constantPlan(constant: ConstantOptions, id: string, cost: number, key: string, now: number | undefined): Plan<D> {
    return makePlan<D>(
      id,
      cost,
      constant.limit,
      key,
      constant.ttlMs,
      undefined,
      { quota: this.config.name, data: undefined },
      now,
    )
  }

  private async resolveLimit(id: string, ctx: QuotaContext<D>): Promise<number | null> {
    const { limit } = this.config
    if (typeof limit !== 'function') return limit
    const cached = this.limitCache?.get(id)
    if (cached) return cached.limit
    const value = await callOption('limit', () => limit(id, ctx))
    const resolved = value === null ? null : checkCount('limit', value)
    this.limitCache?.set(id, { limit: resolved })
    return resolved
  }

  private async resolveTtl(id: string, ctx: QuotaContext<D>): Promise<number | undefined> {
    const { ttlMs } = this.config
    if (typeof ttlMs !== 'function') return ttlMs
    const value = await callOption('ttlMs', () => ttlMs(id, ctx))
    return value === undefined ? undefined : checkDurationMs('ttlMs', value)
  }
}

/** One shape for every plan (the hot path stays monomorphic). */
function makePlan<D>(
  id: string,
  cost: number,
  limit: number | null,
  key: string,
  ttlMs: number | undefined,
  periodEndAt: number | undefined,
  ctx: QuotaContext<D>,
  now: number | undefined,
): Plan<D> {
  return { id, cost, limit, key, ttlMs, periodEndAt, ctx, now }
}
