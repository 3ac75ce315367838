import type { CounterStore } from './store/contract.js'

/** What a quota returns and takes per call: results, call options, the `Quota` and `Reservation` interfaces. */

/** What every result says about the counter: usage after the call, limit, remaining, reset. */
export interface QuotaResultBase {
  /** Usage after the call. */
  usage: number
  /** The limit the call was checked against (`Infinity` for an unlimited id). */
  limit: number
  /** `max(limit - usage, 0)`. */
  remaining: number
  /** Epoch ms at which the counter resets, when a `period` or `ttlMs` bounds it. */
  resetAt?: number
}

/**
 * Outcome of `consume`, `refund`, `reserve` and each item of `consumeAll`: one field, `status`,
 * says what happened.
 *
 * - `'granted'`: the call counted its units (a refund: gave them back). Only this status
 *   changed the counter (see `countsUnits`).
 * - `'replayed'`: an idempotency key matched an earlier granted call; nothing changed now.
 * - `'unlimited'`: the `limit` function returned null: this id has no quota; nothing counted.
 * - `'degraded'`: the store failed and `onStoreError: 'allow'` let the call through uncounted.
 * - `'refused'`: nothing changed; `reason` says why (see `RefusalReason`).
 *
 * `allowed` is true for every status but `'refused'`.
 *
 * @example
 * ```ts
 * const result = await quota.consume('user-1')
 * if (result.status === 'refused') console.log('refused for', result.reason)
 * ```
 */
export type QuotaResult =
  | (QuotaResultBase & { status: 'granted' | 'replayed' | 'unlimited' | 'degraded'; allowed: true; reason?: undefined })
  | (QuotaResultBase & { status: 'refused'; allowed: false; reason: RefusalReason })

/**
 * Why a call was refused: over the limit (`'limit'`), below zero (`'floor'`), or the store is
 * down with `onStoreError: 'deny'` (`'store'`). Items of a refused `consumeAll` other than the
 * refused one say what became of them: `'rolled-back'` (it came before the refused item and
 * had room: granted and given back, or never kept on the atomic path) or `'not-tried'` (it came
 * after: never checked). Either way its usage is unchanged.
 */
export type RefusalReason = 'limit' | 'floor' | 'store' | 'rolled-back' | 'not-tried'

/** Snapshot returned by `quota.get(id)`. */
export interface QuotaState {
  usage: number
  limit: number
  remaining: number
  /** Epoch ms at which the counter resets, when known. */
  resetAt?: number
  unlimited?: boolean
}

/** Context handed to every option function: the quota's name and the call's `data`. */
export interface QuotaContext<D = unknown> {
  /** The quota's name. */
  quota: string
  /** Whatever the caller passed as `data` in the call options. */
  data: D | undefined
  /** Epoch ms at which the current period started (periodic quotas only). */
  periodStartAt?: number
}

/** A value or a (possibly async) function of the id and context. */
export type Resolvable<T, D = unknown> = T | ((id: string, ctx: QuotaContext<D>) => T | Promise<T>)

/** Fixed calendar windows, computed in UTC. A week starts on Monday 00:00 UTC. */
export type Period = 'minute' | 'hour' | 'day' | 'week' | 'month'

/** Options of one call. */
export interface CallOptions<D = unknown> {
  /**
   * Makes the call safe to retry: a granted call is recorded under (quota, id, operation, key)
   * for `idempotencyTtlMs`, and a repeat returns the recorded result with `replayed: true`.
   */
  idempotencyKey?: string
  /** Abort the call: rejects with the signal's reason before the next store call or retry sleep. */
  signal?: AbortSignal
  /** Passed to every option function as `ctx.data` (and to hooks). */
  data?: D
}

/** Options of `transact`. */
export interface TransactOptions<D = unknown> extends CallOptions<D> {
  /** When true, units stay consumed even if `fn` throws (the work cannot be undone). */
  irreversible?: boolean
  /** How long the units are held while `fn` runs (ms). Default: the quota's `holdMs`. */
  holdMs?: number
}

/**
 * What `createQuota` returns.
 *
 * @example
 * ```ts
 * const r = await vouchers.consume('SUMMER', 1)
 * if (!r.allowed) console.log('sold out', r.usage, r.limit)
 * ```
 */
export interface Quota<D = unknown> {
  /** The quota's name. */
  readonly name: string
  /** The store the quota counts in. */
  readonly store: CounterStore
  /** The quota's calendar window, when it has one (headers report its length). */
  readonly period: Period | undefined
  /**
   * The quota's one time source (epoch ms): its `clock` option, else its store's injected
   * clock, else `Date.now`. Windows, reset times, TTLs, holds and the middleware's
   * `Retry-After` all read it.
   */
  readonly clock: () => number
  /** Add `cost` (default 1) to the id's usage if it stays within the limit. Never throws on a refusal. */
  consume(id: string, cost?: number, options?: CallOptions<D>): Promise<QuotaResult>
  /**
   * Give back `cost` (default 1). Refused whole (`reason: 'floor'`) if usage would drop below 0,
   * and on a missing counter, which it never creates nor loads (a reload after the work was
   * undone would take the units off twice).
   */
  refund(id: string, cost?: number, options?: CallOptions<D>): Promise<QuotaResult>
  /**
   * Hold `cost` (default 1) units: they count toward usage like consumed ones, until
   * `commit(n)` keeps `n` of them (default all) and gives the rest back, or `release()` gives
   * them all back. A hold neither committed nor released within `holdMs` (default the quota's)
   * comes back by itself, even when this process is gone. Never throws on a refusal.
   */
  reserve(id: string, cost?: number, options?: ReserveOptions<D>): Promise<Reservation>
  /** Read usage, limit, remaining and resetAt. Loads the counter when `loadUsage` is set and it is missing. */
  get(id: string, options?: Pick<CallOptions<D>, 'signal' | 'data'>): Promise<QuotaState>
  /** Overwrite the id's usage (a live counter keeps its lifetime). */
  set(id: string, usage: number, options?: Pick<CallOptions<D>, 'data'>): Promise<void>
  /** Delete the id's counter (the current period's, for periodic quotas), with its holds. */
  reset(id: string, options?: Pick<CallOptions<D>, 'data'>): Promise<void>
  /**
   * Reserve `cost`, run `fn`, then commit the units, or release them if `fn` throws (unless
   * `irreversible`). Built on `reserve`: should this process die while `fn` runs, the units
   * come back after `holdMs`. Throws `QuotaExceededError` when refused (fn is not run), `fn`'s
   * own error after releasing, or `CompensationError` when that release failed too.
   */
  transact<T>(
    id: string,
    cost: number,
    fn: (result: QuotaResult) => T | Promise<T>,
    options?: TransactOptions<D>,
  ): Promise<T>
}

/** Options of `reserve`. */
export interface ReserveOptions<D = unknown> extends CallOptions<D> {
  /** How long the units are held unless committed or released (ms). Default: the quota's `holdMs`. */
  holdMs?: number
}

/**
 * What `reserve` returns: its result (granted, or refused as `consume` would be) and the hold.
 *
 * @example
 * ```ts
 * const hold = await tokens.reserve(user, 4000, { holdMs: 60_000 })
 * if (!hold.result.allowed) return res.status(429).end()
 * const used = await callModel(prompt, { maxTokens: 4000 })
 * await hold.commit(used) // keep what was used, give back the rest
 * ```
 */
export interface Reservation {
  readonly result: QuotaResult
  /** Units held (0 when nothing is held: refused, unlimited or degraded). */
  readonly cost: number
  /** Epoch ms (the quota's clock) after which the hold comes back by itself; undefined when nothing is held. */
  readonly expiresAt: number | undefined
  /**
   * Keep `cost` units (default all held) and give the rest back. Idempotent: the first settle
   * decides. Rejects with `HoldExpiredError` when the hold expired first (its units came back).
   */
  commit(cost?: number): Promise<QuotaResult>
  /** Give every held unit back. Idempotent; `HoldExpiredError` when the hold expired first. */
  release(): Promise<QuotaResult>
}

/** One item of `consumeAll`. */
export interface ConsumeAllItem {
  quota: Quota<any>
  id: string
  /** Default 1. */
  cost?: number
  data?: unknown
}

/**
 * Result of `consumeAll`. When refused, nothing stays consumed: `refused` names the first item
 * refused, and every other counted item's result has `reason: 'rolled-back'` (before it) or
 * `'not-tried'` (after it).
 */
export interface ConsumeAllResult {
  allowed: boolean
  results: QuotaResult[]
  /** The first item that was refused. */
  refused?: { index: number; quota: string; reason: 'limit' | 'floor' | 'store' }
  replayed?: boolean
}

/**
 * What `reserveAll` returns: every item held, or none (`allowed: false`, as `consumeAll`), and
 * one handle to commit or release them all.
 */
export interface ReservationAll extends ConsumeAllResult {
  /** Epoch ms after which the holds come back by themselves; undefined when nothing is held. */
  readonly expiresAt: number | undefined
  /** Keep every held unit. Idempotent; `HoldExpiredError` when a hold expired first. */
  commit(): Promise<ConsumeAllResult>
  /** Give every held unit back. Idempotent. */
  release(): Promise<ConsumeAllResult>
}
