import { createHash, randomUUID } from 'node:crypto'
import { callHook } from './async.js'
import { type QuotaConfig, resolveConfig } from './config.js'
import { CompensationError, HoldExpiredError, LoadError, QuotaExceededError, StoreError } from './errors.js'
import { guardStore, typedStoreError } from './guarded-store.js'
import { idempotencyKey } from './keys.js'
import { periodWindow } from './period.js'
import { Loader, readUsage } from './load.js'
import { type ConstantOptions, type Plan, Planner } from './plan.js'
import type { HoldLapse } from './reservation.js'
import { HeldReservation, emptyReservation, settleOp } from './reservation.js'
import { grantedResult, refusedResult, unlimitedResult } from './result.js'
import { withRetries } from './retry.js'
import type { ApplyOptions, ApplyResult, CounterOp, CounterStore } from './store.js'
import type {
  CallOptions,
  Period,
  Quota,
  QuotaErrorEvent,
  QuotaOptions,
  QuotaResult,
  QuotaState,
  Reservation,
  ReserveOptions,
  TransactOptions,
} from './types.js'
import { CALL_OPTION_KEYS, checkCallOptions, checkCount, checkDurationMs, checkFunction, checkString, isCount, isPlainId } from './validate.js'

export type { Plan } from './plan.js'

/** Longest accepted idempotency key. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 1024

const RESERVE_OPTION_KEYS = [...CALL_OPTION_KEYS, 'holdMs']
const TRANSACT_OPTION_KEYS = [...RESERVE_OPTION_KEYS, 'irreversible']
const GET_OPTION_KEYS = ['signal', 'data']
const DATA_OPTION_KEYS = ['data']

/** Shared by every call without an idempotency key or signal: the store only reads it. */
const NO_APPLY_OPTIONS: ApplyOptions = Object.freeze({})

/** A store's `apply` may answer with its result or a promise of it (a thenable from any realm). */
function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | null)?.then === 'function'
}

/**
 * Warn once per process that a store shared between processes is atomic only within one. The
 * record of codes already emitted lives on `globalThis` under a registered symbol, so two
 * installed copies of core warn once between them.
 */
function warnIfProcessAtomicShared(store: CounterStore): void {
  const { shared, atomic } = store.capabilities
  const code = 'ANDROMEDA_PROCESS_ATOMIC_STORE'
  const registry = globalThis as { [key: symbol]: Set<string> | undefined }
  const slot = Symbol.for('andromeda.warnedCodes')
  const warned = registry[slot] ?? new Set<string>()
  registry[slot] = warned
  if (!shared || atomic !== 'process' || warned.has(code)) return
  warned.add(code)
  process.emitWarning(
    'This CounterStore is shared between processes but atomic only within one: concurrent processes can exceed a limit. Use a globally atomic store (Redis) when several processes consume the same quota.',
    { code },
  )
}

export function checkIdempotencyKey(value: unknown): string | undefined {
  return value === undefined ? undefined : checkString('idempotencyKey', value, MAX_IDEMPOTENCY_KEY_LENGTH)
}

/**
 * The id of a hold. A reserve with an idempotency key gets one derived from its record, so a
 * retried reserve that replays answers with a handle on the same hold.
 */
export function holdIdOf(recordKey: string | undefined): string {
  return recordKey === undefined ? randomUUID() : createHash('sha256').update(recordKey).digest('base64url').slice(0, 22)
}

/** The quota engine behind `createQuota`. Members not in `Quota` are the engine's own (consumeAll and reserveAll use them). */
export class QuotaEngine<D = unknown> implements Quota<D> {
  readonly name: string
  readonly store: CounterStore
  readonly period: Period | undefined
  readonly clock: () => number
  /** Validated options. */
  readonly config: QuotaConfig<D>
  readonly planner: Planner<D>
  private readonly guarded: CounterStore
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

  // ---------------------------------------------------------------- public API

  consume(id: string, cost = 1, options?: CallOptions<D>): Promise<QuotaResult> {
    // Not `async`: on a store that answers synchronously (memory) the whole call makes one
    // promise, the result's own; on Redis one more, for the reply.
    const constant = this.planner.constant
    if (options === undefined && constant !== undefined && isPlainId(id) && isCount(cost)) return this.consumeConstant(constant, id, cost)
    try {
      checkCallOptions(options)
      const idempotency = checkIdempotencyKey(options?.idempotencyKey)
      const signal = options?.signal
      const planned = this.plan(id, cost, options?.data)
      const start = (plan: Plan<D>) => this.consumePlan(plan, idempotency && this.recordKey(plan, 'consume', idempotency), signal)
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
    const applyOptions: ApplyOptions = { idempotencyKey: recordKey, idempotencyTtlMs: this.config.idempotencyTtlMs, signal: options.signal }
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
    const recordKey = idempotency && this.recordKey(plan, 'reserve', idempotency)
    const holdId = holdIdOf(recordKey)
    // Nothing to hold for a cost of 0: it is a read, as for consume.
    const op: CounterOp = plan.cost > 0 ? { ...this.consumeOp(plan), hold: { id: holdId, holdMs } } : this.consumeOp(plan)
    const applyOptions: ApplyOptions = { idempotencyKey: recordKey, idempotencyTtlMs: this.config.idempotencyTtlMs, signal: options.signal }
    let applied: ApplyResult
    try {
      applied = await this.retrying(recordKey !== undefined, options.signal, () => this.applyLoading([op], [plan], applyOptions))
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
    return new HeldReservation(this, plan, holdId, result, this.planner.now() + holdMs, recordKey)
  }

  async get(id: string, options: Pick<CallOptions<D>, 'signal' | 'data'> = {}): Promise<QuotaState> {
    checkCallOptions(options, GET_OPTION_KEYS)
    const plan = await this.plan(id, 0, options.data)
    if (plan.limit === null) return { usage: 0, limit: Infinity, remaining: Infinity, unlimited: true }
    const limit = plan.limit
    return this.withErrorHook(plan, 'get', async () => {
      let snapshot = await this.guarded.get(plan.key)
      if (!snapshot && this.config.loadUsage) {
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

  async transact<T>(id: string, cost: number, fn: (result: QuotaResult) => T | Promise<T>, options: TransactOptions<D> = {}): Promise<T> {
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
      if (irreversible) await this.keep(id, hold)
      else if (result.status === 'granted' && hold.cost > 0) await this.giveBack([{ engine: this, id, hold }], error)
      throw error
    }
    await this.keep(id, hold)
    return value
  }

  // ---------------------------------------------------------------- the engine's own members

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

  /**
   * Consume a plan's cost. Synchronous when the store answered synchronously and no load was
   * needed (the memory store's hot path); a promise otherwise.
   */
  consumePlan(plan: Plan<D>, recordKey: string | undefined, signal: AbortSignal | undefined): QuotaResult | Promise<QuotaResult> {
    if (plan.limit === null) return this.unlimited(plan)
    const ops = [this.consumeOp(plan)]
    if (recordKey !== undefined) {
      // Safe to send again: retried within the quota's budget.
      const options: ApplyOptions = { idempotencyKey: recordKey, idempotencyTtlMs: this.config.idempotencyTtlMs, signal }
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

  /** Apply ops; when one reports a missing counter whose quota can load, load it and try again. */
  async applyLoading(ops: readonly CounterOp[], plans: readonly Plan<any>[], options: ApplyOptions, engines?: readonly QuotaEngine<any>[]): Promise<ApplyResult> {
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

  load(plan: Plan<any>, signal?: AbortSignal): Promise<void> {
    const loadUsage = this.config.loadUsage!
    return this.loader.load(
      {
        key: plan.key,
        ttlMs: plan.ttlMs,
        readUsage: () => readUsage(() => loadUsage(plan.id, plan.ctx as never)),
        onLoaded: (usage, durationMs) =>
          callHook(this.config.hooks.onLoad, { quota: this.name, id: plan.id, usage, durationMs, data: plan.ctx.data as D }),
      },
      signal,
    )
  }

  /**
   * Settle a hold of this quota (see `HeldReservation`); retried while the store says it is
   * safe. A release (nothing kept) is told to `onCompensate`: held units given back unused.
   */
  async settleHold(plan: Plan<any>, holdId: string, keep: number, clearIdempotencyKey: string | undefined): Promise<QuotaResult | HoldLapse> {
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

  /**
   * Give the holds of a failed unit of work back (each release tells `onCompensate`). A hold
   * that expired meanwhile is back already; a replayed one is the earlier call's and stays. Throws
   * `CompensationError` when a release failed.
   */
  async giveBack(holds: { engine: QuotaEngine<any>; id: string; hold: Reservation }[], cause: unknown): Promise<void> {
    const pending: { quota: string; id: string; cost: number }[] = []
    let lastFailure: unknown
    for (const { engine, id, hold } of [...holds].reverse()) {
      // A replay's units belong to the earlier call that was granted them (nor is its record ours to clear).
      if (hold.result.status !== 'granted') continue
      try {
        // The release tells onCompensate itself.
        await hold.release()
      } catch (error) {
        if (HoldExpiredError.isInstance(error)) continue
        pending.push({ quota: engine.name, id, cost: hold.cost })
        lastFailure = error
      }
    }
    if (pending.length > 0) {
      throw new CompensationError(`could not give back ${pending.length} held item(s) after the work failed`, {
        cause: cause ?? lastFailure,
        compensationError: lastFailure,
        pending,
      })
    }
  }

  /**
   * Commit a hold whose work is done. A hold that lapsed on a live counter of a quota without
   * `loadUsage` gave its units back while they were in use: they are charged again (or
   * `HoldExpiredError` when that is refused). Where the counter itself vanished, or the quota
   * loads from a system of record (which counts the finished work when it reloads), a charge
   * again would count the units twice: nothing more is done.
   */
  async keep(id: string, hold: Reservation): Promise<void> {
    const { status } = hold.result
    if (status !== 'granted' && status !== 'replayed') return
    try {
      await hold.commit()
    } catch (error) {
      if (!HoldExpiredError.isInstance(error)) throw error
      // A replay's hold was the earlier call's, settled or lapsed long ago: not ours to charge.
      if (status === 'replayed') return
      if (await this.chargeAgainAfter(error.lapse, id, hold.cost)) return
      throw error
    }
  }

  /** After a hold lapsed: charge its units again where that is right (see `keep`); false when refused. */
  async chargeAgainAfter(lapse: HoldLapse, id: string, cost: number): Promise<boolean> {
    if (lapse !== 'expired' || this.config.loadUsage) return true
    return (await this.consume(id, cost)).allowed
  }

  /** Map the store's answer for op `index` to a QuotaResult. */
  toResult(plan: Plan<any>, applied: ApplyResult, index: number): QuotaResult {
    const limit = plan.limit ?? Number.POSITIVE_INFINITY
    const usage = applied.values[index] ?? 0
    // A replay answers for the counter the recorded call charged, which may be an earlier
    // window's: its reset time is the recorded lifetime, not the current window's end.
    const replayedTtl = applied.ok && applied.replayed ? applied.ttlMs?.[index] : undefined
    const resetAt = replayedTtl !== undefined ? this.replayedResetAt(plan, replayedTtl) : this.resetAt(plan, applied.ttlMs?.[index])
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

  /** Hooks for a finished consume or reserve. */
  notify(plan: Plan<any>, result: QuotaResult): void {
    const hook = result.allowed ? this.config.hooks.onConsume : this.config.hooks.onExceeded
    if (hook) callHook(hook, this.event(plan, result))
  }

  /** Apply `onStoreError` to a consume that failed; returns a result unless the error must propagate. */
  onStoreFault(plan: Plan<any>, error: unknown): QuotaResult | undefined {
    if (!StoreError.isInstance(error) || this.config.onStoreError === 'throw') return undefined
    const limit = plan.limit ?? Number.POSITIVE_INFINITY
    const result = this.config.onStoreError === 'allow' ? grantedResult('degraded', 0, limit) : refusedResult('store', 0, limit)
    this.notify(plan, result)
    return result
  }

  /** Run `call`, retried per the quota's `retry` policy when `safe` (it cannot count twice). */
  retrying<T>(safe: boolean, signal: AbortSignal | undefined, call: () => T | Promise<T>): Promise<T> {
    return withRetries(safe ? this.config.retry : undefined, signal, call)
  }

  // ---------------------------------------------------------------- the hot path

  /**
   * `consume(id, cost)` without options on a quota whose options are constants. The same steps
   * as `plan` + `consumePlan`, without building a plan unless the answer needs one (a refusal,
   * a counter to load, a hook to tell, a store fault): the input was checked by the caller, the
   * key needs no window, and a grant is mapped straight to its result.
   */
  private consumeConstant(constant: ConstantOptions, id: string, cost: number): Promise<QuotaResult> {
    const key = this.planner.counterKeys.get(id)
    const ops: CounterOp[] = [{ key, delta: cost, max: constant.limit, ttlMs: constant.ttlMs, ifMissing: constant.ifMissing }]
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
    if (!applied.ok || this.config.hooks.onConsume !== undefined) return this.consumeApplied(planOf(), ops, NO_APPLY_OPTIONS, applied)
    const ttlMs = applied.ttlMs?.[0]
    return grantedResult('granted', applied.values[0]!, constant.limit, ttlMs === undefined ? undefined : (now ?? this.planner.now()) + ttlMs)
  }

  /** The store's first answer to a consume: the result, or (a counter to load first) a second round. */
  private consumeApplied(plan: Plan<D>, ops: CounterOp[], options: ApplyOptions, applied: ApplyResult): QuotaResult | Promise<QuotaResult> {
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

  // ---------------------------------------------------------------- helpers

  /** One store apply with typed errors. */
  private async applyOnce(ops: readonly CounterOp[], options: ApplyOptions): Promise<ApplyResult> {
    try {
      return await this.store.apply(ops, options)
    } catch (error) {
      throw typedStoreError(error, options.signal)
    }
  }

  /** An id without a quota: allowed, nothing counted; told to the hook of the operation (consume or refund). */
  private unlimited(plan: Plan<D>, hook = this.config.hooks.onConsume): QuotaResult {
    const result = unlimitedResult()
    if (hook) callHook(hook, this.event(plan, result))
    return result
  }

  private event(plan: Plan<any>, result: QuotaResult) {
    return { quota: this.name, id: plan.id, cost: plan.cost, result, data: plan.ctx.data as D }
  }

  private resetAt(plan: Plan<any>, ttlMs: number | undefined): number | undefined {
    if (plan.periodEndAt !== undefined) return plan.periodEndAt
    if (ttlMs === undefined) return undefined
    plan.now ??= this.planner.now()
    return plan.now + ttlMs
  }

  /** Run a store-touching step; report the quota's own failures to `onError`. */
  private async withErrorHook<T>(plan: Plan<D>, operation: QuotaErrorEvent['operation'], step: () => Promise<T>): Promise<T> {
    try {
      return await step()
    } catch (error) {
      this.reportError(plan, operation, error)
      throw error
    }
  }

  /** Tell `onError` about the quota's own failure (not the caller's abort). */
  private reportError(plan: Plan<D>, operation: QuotaErrorEvent['operation'], error: unknown): void {
    const aborted = error instanceof Error && (error.name === 'AbortError' || error.name === 'TimeoutError')
    if (!aborted) callHook(this.config.hooks.onError, { quota: this.name, id: plan.id, operation, error, data: plan.ctx.data })
  }
}

/**
 * Create a quota: a named limit over usage counters in a `CounterStore`.
 *
 * Constant options are validated now (throws `InvalidArgumentError` naming the option);
 * function-valued options are validated on each call, before the store is touched.
 *
 * Guarantees, on any store whose `capabilities.atomic` covers the callers: usage never passes
 * the limit and never drops below zero; a refused call changes nothing; a counter's TTL is set
 * when it is created and never re-armed; a hold not settled within `holdMs` comes back by itself.
 *
 * @param options - see `QuotaOptions`: `name`, `store`, `limit` (number, null or function),
 *   `loadUsage`, `ttlMs`, `period`, `lock`, `limitCacheTtlMs`, `onStoreError`, `cost`,
 *   `idempotencyTtlMs`, `holdMs`, `retry`, `clock`, `hooks`.
 * @throws InvalidArgumentError when an option is out of contract.
 *
 * @example
 * ```ts
 * import { createQuota } from '@andromeda/core'
 * import { createMemoryStore } from '@andromeda/memory'
 *
 * const vouchers = createQuota({
 *   name: 'voucher',
 *   store: createMemoryStore(),
 *   limit: async (code) => db.voucherLimit(code),
 *   loadUsage: async (code) => db.voucherUsage(code),
 * })
 * const result = await vouchers.consume('SUMMER24')
 * if (!result.allowed) throw new Error('sold out')
 * ```
 */
export function createQuota<D = unknown>(options: QuotaOptions<D>): Quota<D> {
  return new QuotaEngine(options)
}
