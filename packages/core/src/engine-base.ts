import { callHook } from './async.js'
import { type QuotaConfig, resolveConfig } from './config.js'
import { LoadError, StoreError } from './errors.js'
import { guardStore, typedStoreError } from './guarded-store.js'
import { idempotencyKey } from './keys.js'
import { Loader, readUsage } from './load.js'
import { periodWindow } from './period.js'
import { type Plan, Planner } from './plan.js'
import type { QuotaErrorEvent, QuotaOptions } from './quota-options.js'
import type { HoldLapse } from './reservation.js'
import { settleOp } from './reservation.js'
import { grantedResult, refusedResult, unlimitedResult } from './result.js'
import { withRetries } from './retry.js'
import type { ApplyOptions, ApplyResult, CounterOp, CounterStore } from './store/contract.js'
import type { Period, QuotaResult } from './types.js'
import { warnIfProcessAtomicShared } from './warnings.js'

/** Shared by every call without an idempotency key or signal: the store only reads it. */
export const NO_APPLY_OPTIONS: ApplyOptions = Object.freeze({})

/**
 * What every operation of a quota shares, apart from the operations themselves (`QuotaEngine`):
 * its validated options, its store (as given, and guarded so every fault is typed), plans, the
 * store's answers mapped to results, loading missing counters, retries, hooks and error reports.
 * `consumeAll` and `reserveAll` drive several engines through these members.
 */
export class EngineBase<D = unknown> {
  readonly name: string
  readonly store: CounterStore
  readonly period: Period | undefined
  readonly clock: () => number
  /** Validated options. */
  readonly config: QuotaConfig<D>
  readonly planner: Planner<D>
  protected readonly guarded: CounterStore
  private readonly loader: Loader

  constructor(options: QuotaOptions<D>) {
    this.config = resolveConfig(options)
    this.name = this.config.name
    this.store = this.config.store
    this.period = this.config.period
    this.clock = this.config.clock
    this.planner = new Planner(this.config)
    this.guarded = guardStore(this.store)
    this.loader = new Loader(this.guarded, this.config.lock)
    warnIfProcessAtomicShared(this.store)
  }

  /** Validate a call's input and resolve cost, limit, key and lifetime. Touches no store. */
  plan(id: string, requestedCost: number, data: D | undefined): Plan<D> | Promise<Plan<D>> {
    return this.planner.plan(id, requestedCost, data)
  }

  /**
   * Where a call's idempotency record lives: in the id's hash-tag group, under the quota's
   * window kind but not under one window's counter (a retry after the window changed or the
   * counter expired finds it), keyed by its cost too.
   */
  recordKey(plan: Plan<D>, operation: 'consume' | 'refund' | 'reserve', key: string): string {
    return idempotencyKey(this.planner.groupOf(plan.id), operation, key, String(plan.cost), this.planner.windowKind)
  }

  /** The store op that consumes a plan's cost. */
  consumeOp(plan: Plan<D>): CounterOp {
    return {
      key: plan.key,
      delta: plan.cost,
      max: plan.limit ?? undefined,
      ttlMs: plan.ttlMs,
      ifMissing: this.config.loadUsage ? 'report' : 'create',
    }
  }

  /** Apply options of a call that carries an idempotency record (or none) and maybe a signal. */
  applyOptions(recordKey: string | undefined, signal: AbortSignal | undefined): ApplyOptions {
    return { idempotencyKey: recordKey, idempotencyTtlMs: this.config.idempotencyTtlMs, signal }
  }

  /** One store apply with typed errors. */
  protected async applyOnce(ops: readonly CounterOp[], options: ApplyOptions): Promise<ApplyResult> {
    try {
      return await this.store.apply(ops, options)
    } catch (error) {
      throw typedStoreError(error, options.signal)
    }
  }

  /** Apply ops; when one reports a missing counter whose quota can load, load it and try again. */
  async applyLoading(
    ops: readonly CounterOp[],
    plans: readonly Plan<any>[],
    options: ApplyOptions,
    engines?: readonly EngineBase<any>[],
  ): Promise<ApplyResult> {
    // Each round loads at most one counter; a counter that vanishes again right away (a TTL
    // shorter than the load) gets a few more rounds, then the call fails rather than spin.
    const maxRounds = ops.length + 3
    for (let round = 0; round < maxRounds; round++) {
      options.signal?.throwIfAborted()
      const applied = await this.applyOnce(ops, options)
      if (applied.ok || applied.reason !== 'missing') return applied
      const engine = engines?.[applied.index] ?? this
      if (!engine.config.loadUsage) return applied
      await engine.load(plans[applied.index]!, options.signal)
    }
    throw new LoadError(`counters of quota "${this.name}" went missing again right after being loaded`)
  }

  /** Fill the plan's missing counter from `loadUsage` (single-flight, then the loader lock). */
  load(plan: Plan<any>, signal?: AbortSignal): Promise<void> {
    const loadUsage = this.config.loadUsage!
    return this.loader.load(
      {
        key: plan.key,
        ttlMs: plan.ttlMs,
        readUsage: () => readUsage(() => loadUsage(plan.id, plan.ctx as never)),
        onLoaded: (usage, durationMs) =>
          callHook(this.config.hooks.onLoad, {
            quota: this.name,
            id: plan.id,
            usage,
            durationMs,
            data: plan.ctx.data as D,
          }),
      },
      signal,
    )
  }

  /**
   * Settle a hold of this quota (see `HeldReservation`); retried while the store says it is
   * safe. A release (nothing kept) is told to `onCompensate`: held units given back unused.
   */
  async settleHold(
    plan: Plan<any>,
    holdId: string,
    keep: number,
    clearIdempotencyKey: string | undefined,
  ): Promise<QuotaResult | HoldLapse> {
    const options: ApplyOptions = clearIdempotencyKey === undefined ? NO_APPLY_OPTIONS : { clearIdempotencyKey }
    const release = keep === 0
    const event = { quota: this.name, id: plan.id, cost: plan.cost, data: plan.ctx.data as D }
    let applied: ApplyResult
    try {
      applied = await this.withErrorHook(plan, 'settle', () =>
        this.retrying(true, undefined, () => this.applyOnce([settleOp(plan, holdId, keep)], options)),
      )
    } catch (error) {
      if (release) callHook(this.config.hooks.onCompensate, { ...event, error })
      throw error
    }
    // Gone: expired on a live counter, or gone with a counter that vanished (reset, expired, lost).
    if (!applied.ok && applied.reason === 'hold') return applied.values[0] === undefined ? 'counter-gone' : 'expired'
    // The store reports the counter's lifetime as of now, not as of the reserve.
    const result = this.toResult({ ...plan, now: undefined }, applied, 0)
    if (release && applied.ok && !applied.replayed) callHook(this.config.hooks.onCompensate, { ...event, result })
    return result
  }

  /** Map the store's answer for op `index` to a QuotaResult. */
  toResult(plan: Plan<any>, applied: ApplyResult, index: number): QuotaResult {
    const limit = plan.limit ?? Number.POSITIVE_INFINITY
    const usage = applied.values[index] ?? 0
    // A replay answers for the counter the recorded call charged, which may be an earlier
    // window's: its reset time is the recorded lifetime, not the current window's end.
    const replayedTtl = applied.ok && applied.replayed ? applied.ttlMs?.[index] : undefined
    const resetAt =
      replayedTtl !== undefined ? this.replayedResetAt(plan, replayedTtl) : this.resetAt(plan, applied.ttlMs?.[index])
    if (applied.ok) return grantedResult(applied.replayed ? 'replayed' : 'granted', usage, limit, resetAt)
    // 'missing' reaches here only for a refund (never loaded): nothing to give back.
    return refusedResult(applied.reason === 'limit' ? 'limit' : 'floor', usage, limit, resetAt)
  }

  /**
   * The reset time of the counter a replayed call charged, from the lifetime the store reports
   * for it now. A periodic counter ends with its window: the nearest window boundary, so a
   * store clock a few ms apart from the quota's does not move it.
   */
  private replayedResetAt(plan: Plan<any>, ttlMs: number): number {
    plan.now ??= this.planner.now()
    const endAt = plan.now + ttlMs
    const { period } = this.config
    if (period === undefined) return endAt
    const window = periodWindow(period, endAt)
    return endAt - window.startAt < window.endAt - endAt ? window.startAt : window.endAt
  }

  protected resetAt(plan: Plan<any>, ttlMs: number | undefined): number | undefined {
    if (plan.periodEndAt !== undefined) return plan.periodEndAt
    if (ttlMs === undefined) return undefined
    plan.now ??= this.planner.now()
    return plan.now + ttlMs
  }

  /** Hooks for a finished consume or reserve. */
  notify(plan: Plan<any>, result: QuotaResult): void {
    const hook = result.allowed ? this.config.hooks.onConsume : this.config.hooks.onExceeded
    if (hook) callHook(hook, this.event(plan, result))
  }

  /** Apply `onStoreError` to a consume that failed; returns a result unless the error must propagate. */
  onStoreFault(plan: Plan<any>, error: unknown): QuotaResult | undefined {
    if (!StoreError.isInstance(error) || this.config.onStoreError === 'throw') return undefined
    const limit = plan.limit ?? Number.POSITIVE_INFINITY
    const result =
      this.config.onStoreError === 'allow' ? grantedResult('degraded', 0, limit) : refusedResult('store', 0, limit)
    this.notify(plan, result)
    return result
  }

  /** Run `call`, retried per the quota's `retry` policy when `safe` (it cannot count twice). */
  retrying<T>(safe: boolean, signal: AbortSignal | undefined, call: () => T | Promise<T>): Promise<T> {
    return withRetries(safe ? this.config.retry : undefined, signal, call)
  }

  /** An id without a quota: allowed, nothing counted; told to the hook of the operation (consume or refund). */
  protected unlimited(plan: Plan<D>, hook = this.config.hooks.onConsume): QuotaResult {
    const result = unlimitedResult()
    if (hook) callHook(hook, this.event(plan, result))
    return result
  }

  protected event(plan: Plan<any>, result: QuotaResult) {
    return { quota: this.name, id: plan.id, cost: plan.cost, result, data: plan.ctx.data as D }
  }

  /** Run a store-touching step; report the quota's own failures to `onError`. */
  protected async withErrorHook<T>(
    plan: Plan<D>,
    operation: QuotaErrorEvent['operation'],
    step: () => Promise<T>,
  ): Promise<T> {
    try {
      return await step()
    } catch (error) {
      this.reportError(plan, operation, error)
      throw error
    }
  }

  /** Tell `onError` about the quota's own failure (not the caller's abort). */
  protected reportError(plan: Plan<D>, operation: QuotaErrorEvent['operation'], error: unknown): void {
    const aborted = error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError')
    if (!aborted)
      callHook(this.config.hooks.onError, { quota: this.name, id: plan.id, operation, error, data: plan.ctx.data })
  }
}
