import { callHook } from './async.js'
import { EngineBase, NO_APPLY_OPTIONS } from './engine-base.js'
import { LoadError, QuotaExceededError } from './errors.js'
import { typedStoreError } from './guarded-store.js'
import { giveBack, holdIdOf, keepHold } from './holds.js'
import type { ConstantOptions, Plan } from './plan.js'
import { emptyReservation, HeldReservation } from './reservation.js'
import { grantedResult } from './result.js'
import type { ApplyOptions, ApplyResult, CounterOp } from './store/contract.js'
import type {
  CallOptions,
  Quota,
  QuotaResult,
  QuotaState,
  Reservation,
  ReserveOptions,
  TransactOptions,
} from './types.js'
import {
  CALL_OPTION_KEYS,
  checkCallOptions,
  checkCount,
  checkDurationMs,
  checkFunction,
  checkIdempotencyKey,
  isCount,
  isPlainId,
} from './validate.js'

export type { Plan } from './plan.js'

const RESERVE_OPTION_KEYS = [...CALL_OPTION_KEYS, 'holdMs']
const TRANSACT_OPTION_KEYS = [...RESERVE_OPTION_KEYS, 'irreversible']
const GET_OPTION_KEYS = ['signal', 'data']
const DATA_OPTION_KEYS = ['data']

/** A store's `apply` may answer with its result or a promise of it (a thenable from any realm). */
function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | null)?.then === 'function'
}

/**
 * The quota engine behind `createQuota`: the operations of `Quota`, on the shared machinery of
 * `EngineBase`, and consume's paths (the hot path of constant options among them).
 */
export class QuotaEngine<D = unknown> extends EngineBase<D> implements Quota<D> {
  consume(id: string, cost = 1, options?: CallOptions<D>): Promise<QuotaResult> {
    // Not `async`: on a store that answers synchronously (memory) the whole call makes one
    // promise, the result's own; on Redis one more, for the reply.
    const constant = this.planner.constant
    if (options === undefined && constant !== undefined && isPlainId(id) && isCount(cost))
      return this.consumeConstant(constant, id, cost)
    try {
      checkCallOptions(options)
      const idempotency = checkIdempotencyKey(options?.idempotencyKey)
      const signal = options?.signal
      const planned = this.plan(id, cost, options?.data)
      const start = (plan: Plan<D>) =>
        this.consumePlan(plan, idempotency && this.recordKey(plan, 'consume', idempotency), signal)
      if (planned instanceof Promise) return planned.then(start)
      const result = start(planned)
      return result instanceof Promise ? result : Promise.resolve(result)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  async refund(id: string, cost = 1, options: CallOptions<D> = {}): Promise<QuotaResult> {
    checkCallOptions(options)
    const idempotency = checkIdempotencyKey(options.idempotencyKey)
    const plan = await this.plan(id, cost, options.data)
    if (plan.limit === null) return this.unlimited(plan, this.config.hooks.onRefund)
    // Never a load: a refund on a missing counter gives back nothing (reason 'floor').
    const op: CounterOp = { key: plan.key, delta: -plan.cost, min: 0, ifMissing: 'report' }
    const recordKey = idempotency && this.recordKey(plan, 'refund', idempotency)
    const applyOptions = this.applyOptions(recordKey, options.signal)
    const applied = await this.withErrorHook(plan, 'refund', () =>
      this.retrying(recordKey !== undefined, options.signal, () => this.applyOnce([op], applyOptions)),
    )
    const result = this.toResult(plan, applied, 0)
    callHook(result.allowed ? this.config.hooks.onRefund : this.config.hooks.onExceeded, this.event(plan, result))
    return result
  }

  async reserve(id: string, cost = 1, options: ReserveOptions<D> = {}): Promise<Reservation> {
    checkCallOptions(options, RESERVE_OPTION_KEYS)
    const idempotency = checkIdempotencyKey(options.idempotencyKey)
    const holdMs = options.holdMs === undefined ? this.config.holdMs : checkDurationMs('holdMs', options.holdMs)
    const plan = await this.plan(id, cost, options.data)
    if (plan.limit === null) return emptyReservation(this.unlimited(plan))
    // The hold's nominal end is read off the clock before the store is touched: a clock that
    // fails then fails the call with nothing held.
    plan.now ??= this.planner.now()
    const heldAt = plan.now
    const recordKey = idempotency && this.recordKey(plan, 'reserve', idempotency)
    const holdId = holdIdOf(recordKey)
    // Nothing to hold for a cost of 0: it is a read, as for consume.
    const op: CounterOp =
      plan.cost > 0 ? { ...this.consumeOp(plan), hold: { id: holdId, holdMs } } : this.consumeOp(plan)
    const applyOptions = this.applyOptions(recordKey, options.signal)
    let applied: ApplyResult
    try {
      applied = await this.retrying(recordKey !== undefined, options.signal, () =>
        this.applyLoading([op], [plan], applyOptions),
      )
    } catch (error) {
      this.reportError(plan, 'reserve', error)
      const degraded = this.onStoreFault(plan, error)
      if (degraded) return emptyReservation(degraded)
      throw error
    }
    const result = this.toResult(plan, applied, 0)
    this.notify(plan, result)
    if (!result.allowed || plan.cost === 0) return emptyReservation(result)
    // A replay's hold is the recorded call's. When that call was made in an earlier window, its
    // counter ended with that window (its TTL is the window's rest), and the hold with it: settling
    // the replayed handle then finds it gone, as for a hold that lapsed.
    return new HeldReservation(this, plan, holdId, result, heldAt + holdMs, recordKey)
  }

  async get(id: string, options: Pick<CallOptions<D>, 'signal' | 'data'> = {}): Promise<QuotaState> {
    checkCallOptions(options, GET_OPTION_KEYS)
    const plan = await this.plan(id, 0, options.data)
    if (plan.limit === null) return { usage: 0, limit: Infinity, remaining: Infinity, unlimited: true }
    const limit = plan.limit
    return this.withErrorHook(plan, 'get', async () => {
      // A counter that should be loaded is never read as 0: loaded, then read again, a few
      // rounds at most when it vanishes again right away (a reset, a TTL shorter than the load).
      let snapshot = await this.guarded.get(plan.key)
      for (let round = 1; !snapshot && this.config.loadUsage; round++) {
        if (round > 3)
          throw new LoadError(`counter of quota "${this.name}" went missing again right after being loaded`)
        await this.load(plan, options.signal)
        snapshot = await this.guarded.get(plan.key)
      }
      const usage = snapshot?.value ?? 0
      const resetAt = this.resetAt(plan, snapshot?.ttlMs)
      return { usage, limit, remaining: Math.max(limit - usage, 0), ...(resetAt === undefined ? {} : { resetAt }) }
    })
  }

  async set(id: string, usage: number, options: Pick<CallOptions<D>, 'data'> = {}): Promise<void> {
    checkCallOptions(options, DATA_OPTION_KEYS)
    checkCount('usage', usage)
    const plan = await this.plan(id, 0, options.data)
    await this.withErrorHook(plan, 'set', () => this.guarded.set(plan.key, usage, plan.ttlMs))
  }

  async reset(id: string, options: Pick<CallOptions<D>, 'data'> = {}): Promise<void> {
    checkCallOptions(options, DATA_OPTION_KEYS)
    const plan = await this.plan(id, 0, options.data)
    await this.withErrorHook(plan, 'reset', () => this.guarded.delete(plan.key))
  }

  async transact<T>(
    id: string,
    cost: number,
    fn: (result: QuotaResult) => T | Promise<T>,
    options: TransactOptions<D> = {},
  ): Promise<T> {
    checkFunction('fn', fn)
    checkCallOptions(options, TRANSACT_OPTION_KEYS)
    const { irreversible, ...reserveOptions } = options
    const hold = await this.reserve(id, cost, reserveOptions)
    const { result } = hold
    if (!result.allowed) throw new QuotaExceededError(this.name, result)
    let value: T
    try {
      value = await fn(result)
    } catch (error) {
      // Irreversible work keeps its units; otherwise they go back (a replay's units belong to
      // the earlier call; unlimited and degraded calls hold nothing).
      if (irreversible) await keepHold({ engine: this, id, hold })
      else if (result.status === 'granted' && hold.cost > 0) await giveBack([{ engine: this, id, hold }], error)
      throw error
    }
    await keepHold({ engine: this, id, hold })
    return value
  }

  // ---------------------------------------------------------------- consume's paths

  /**
   * Consume a plan's cost. Synchronous when the store answered synchronously and no load was
   * needed (the memory store's hot path); a promise otherwise.
   */
  consumePlan(
    plan: Plan<D>,
    recordKey: string | undefined,
    signal: AbortSignal | undefined,
  ): QuotaResult | Promise<QuotaResult> {
    if (plan.limit === null) return this.unlimited(plan)
    const ops = [this.consumeOp(plan)]
    if (recordKey !== undefined) {
      // Safe to send again: retried within the quota's budget.
      const options = this.applyOptions(recordKey, signal)
      return this.retrying(true, signal, () => this.applyLoading(ops, [plan], options)).then(
        (applied) => this.consumeApplied(plan, ops, options, applied),
        (error: unknown) => this.consumeFailed(plan, error),
      )
    }
    const options: ApplyOptions = signal === undefined ? NO_APPLY_OPTIONS : { signal }
    let applied: ApplyResult | Promise<ApplyResult>
    try {
      signal?.throwIfAborted()
      applied = this.store.apply(ops, options)
    } catch (error) {
      return this.consumeFailed(plan, typedStoreError(error, signal))
    }
    if (!isPromiseLike(applied)) return this.consumeApplied(plan, ops, options, applied)
    return Promise.resolve(applied).then(
      (answer) => this.consumeApplied(plan, ops, options, answer),
      (error: unknown) => this.consumeFailed(plan, typedStoreError(error, signal)),
    )
  }

  /**
   * The hot path: `consume(id, cost)` without options on a quota whose options are constants.
   * The same steps as `plan` + `consumePlan`, without building a plan unless the answer needs
   * one (a refusal, a counter to load, a hook to tell, a store fault): the input was checked by
   * the caller, the key needs no window, and a grant is mapped straight to its result. Keep it
   * free of allocations, closures and awaits beyond the ones it has (see the benchmarks).
   */
  private consumeConstant(constant: ConstantOptions, id: string, cost: number): Promise<QuotaResult> {
    const key = this.planner.counterKeys.get(id)
    const ops: CounterOp[] = [
      { key, delta: cost, max: constant.limit, ttlMs: constant.ttlMs, ifMissing: constant.ifMissing },
    ]
    let now: number | undefined
    try {
      // A quota with a TTL checks its clock before the store is touched.
      if (constant.ttlMs !== undefined) now = this.planner.now()
    } catch (error) {
      return Promise.reject(error)
    }
    const planOf = () => this.planner.constantPlan(constant, id, cost, key, now)
    try {
      const applied = this.store.apply(ops, NO_APPLY_OPTIONS)
      if (isPromiseLike(applied)) {
        return Promise.resolve(applied).then(
          (answer) => this.constantApplied(constant, ops, answer, now, planOf),
          (error: unknown) => this.consumeFailed(planOf(), typedStoreError(error, undefined)),
        )
      }
      const result = this.constantApplied(constant, ops, applied, now, planOf)
      return result instanceof Promise ? result : Promise.resolve(result)
    } catch (error) {
      try {
        return Promise.resolve(this.consumeFailed(planOf(), typedStoreError(error, undefined)))
      } catch (failure) {
        return Promise.reject(failure)
      }
    }
  }

  private constantApplied(
    constant: ConstantOptions,
    ops: CounterOp[],
    applied: ApplyResult,
    now: number | undefined,
    planOf: () => Plan<D>,
  ): QuotaResult | Promise<QuotaResult> {
    if (!applied.ok || this.config.hooks.onConsume !== undefined)
      return this.consumeApplied(planOf(), ops, NO_APPLY_OPTIONS, applied)
    const ttlMs = applied.ttlMs?.[0]
    return grantedResult(
      'granted',
      applied.values[0]!,
      constant.limit,
      ttlMs === undefined ? undefined : (now ?? this.planner.now()) + ttlMs,
    )
  }

  /** The store's first answer to a consume: the result, or (a counter to load first) a second round. */
  private consumeApplied(
    plan: Plan<D>,
    ops: CounterOp[],
    options: ApplyOptions,
    applied: ApplyResult,
  ): QuotaResult | Promise<QuotaResult> {
    if (!applied.ok && applied.reason === 'missing') {
      return this.applyLoading(ops, [plan], options).then(
        (loaded) => this.consumeApplied(plan, ops, options, loaded),
        (error: unknown) => this.consumeFailed(plan, error),
      )
    }
    const result = this.toResult(plan, applied, 0)
    this.notify(plan, result)
    return result
  }

  /** A consume the store failed: `onStoreError` decides between a result and the error. */
  private consumeFailed(plan: Plan<D>, error: unknown): QuotaResult {
    this.reportError(plan, 'consume', error)
    const degraded = this.onStoreFault(plan, error)
    if (degraded) return degraded
    throw error
  }
}
