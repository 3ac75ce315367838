import { LRUCache } from 'lru-cache'
import { callHook } from './async.js'
import { type QuotaConfig, resolveConfig } from './config.js'
import { CompensationError, InvalidArgumentError, LoadError, QuotaExceededError, StoreError } from './errors.js'
import { guardStore, typedStoreError } from './guarded-store.js'
import { CounterKeyCache, counterKeyIn, idempotencyKey, quotaKeyPrefix } from './keys.js'
import { Loader, readUsage } from './load.js'
import { periodWindow } from './period.js'
import type { ApplyOptions, ApplyResult, CounterOp, CounterStore } from './store.js'
import type {
  CallOptions,
  Quota,
  QuotaContext,
  QuotaErrorEvent,
  QuotaOptions,
  QuotaResult,
  QuotaState,
  TransactOptions,
} from './types.js'
import {
  MAX_ID_LENGTH,
  checkCallOptions,
  checkCount,
  checkDurationMs,
  checkFunction,
  checkString,
  isCount,
  isPlainId,
} from './validate.js'

/** Longest accepted idempotency key. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 1024

/** Everything one call resolved before touching the store. */
export interface Plan<D = unknown> {
  engine: QuotaEngine<D>
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
   * Clock reading when the plan was made (periodic quotas, whose window it picks); otherwise
   * the clock is read only when a result needs it (resetAt of a counter with a TTL).
   */
  now: number | undefined
}

/** What the hot path needs of a quota whose options are all constants (see `consumeConstant`). */
interface ConstantOptions {
  limit: number
  ttlMs: number | undefined
  ifMissing: 'create' | 'report'
}

const warnedStores = new WeakSet<object>()

/** Shared by every call without an idempotency key or signal: the store only reads it. */
const NO_APPLY_OPTIONS: ApplyOptions = Object.freeze({})

/** A store's `apply` may answer with its result or a promise of it (a thenable from any realm). */
function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | null)?.then === 'function'
}

/** Run a user's option function; whatever it throws becomes a LoadError naming the option. */
async function callOption<T>(option: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (error) {
    throw new LoadError(`the ${option} function failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
  }
}

/** Warn once per store that is shared between processes but atomic only within one. */
function warnIfProcessAtomicShared(store: CounterStore): void {
  const { shared, atomic } = store.capabilities
  if (!shared || atomic !== 'process' || warnedStores.has(store)) return
  warnedStores.add(store)
  process.emitWarning(
    'This CounterStore is shared between processes but atomic only within one: concurrent processes can exceed a limit. Use a globally atomic store (Redis) when several processes consume the same quota.',
    { code: 'ANDROMEDA_PROCESS_ATOMIC_STORE' },
  )
}

export function checkIdempotencyKey(value: unknown): string | undefined {
  return value === undefined ? undefined : checkString('idempotencyKey', value, MAX_IDEMPOTENCY_KEY_LENGTH)
}

/** The quota engine behind `createQuota`. */
export class QuotaEngine<D = unknown> implements Quota<D> {
  readonly name: string
  readonly store: CounterStore
  /** Internal: validated options. */
  readonly config: QuotaConfig<D>
  private readonly guarded: CounterStore
  private readonly loader: Loader
  private readonly limitCache: LRUCache<string, { limit: number | null }> | undefined
  /** `{<name>:`, the start of every key of this quota, built once. */
  private readonly keyPrefix: string
  /** Set when cost, limit and ttlMs are constants and there is no period: the hot path applies. */
  private readonly constant: ConstantOptions | undefined
  /**
   * A period or a ttlMs: such a quota reads its clock (and checks it) before every call.
   * Others read it only when a counter reports a lifetime (resetAt), which saves a clock
   * read per consume on the hot path.
   */
  private readonly usesTime: boolean
  /** Counter keys of recent ids (quotas without a period). */
  private readonly counterKeys: CounterKeyCache

  constructor(options: QuotaOptions<D>) {
    this.config = resolveConfig(options)
    this.name = this.config.name
    this.store = this.config.store
    this.keyPrefix = quotaKeyPrefix(this.name)
    this.counterKeys = new CounterKeyCache(this.keyPrefix)
    this.usesTime = this.config.period !== undefined || this.config.ttlMs !== undefined
    const { cost, limit, ttlMs, period, loadUsage } = this.config
    this.constant =
      cost === undefined && typeof limit === 'number' && typeof ttlMs !== 'function' && period === undefined
        ? { limit, ttlMs, ifMissing: loadUsage ? 'report' : 'create' }
        : undefined
    this.guarded = guardStore(this.store)
    this.loader = new Loader(this.guarded, this.config.lock)
    this.limitCache =
      this.config.limitCacheTtlMs !== undefined && typeof this.config.limit === 'function'
        ? new LRUCache({ max: 10_000, ttl: this.config.limitCacheTtlMs })
        : undefined
    warnIfProcessAtomicShared(this.store)
  }

  // ---------------------------------------------------------------- public API

  consume(id: string, cost = 1, options?: CallOptions<D>): Promise<QuotaResult> {
    // Not `async`: on a store that answers synchronously (memory) the whole call makes one
    // promise, the result's own; on Redis one more, for the reply.
    if (options === undefined && this.constant !== undefined && isPlainId(id) && isCount(cost)) {
      return this.consumeConstant(this.constant, id, cost)
    }
    try {
      let idempotency: string | undefined
      let data: D | undefined
      let signal: AbortSignal | undefined
      if (options !== undefined) {
        checkCallOptions(options)
        idempotency = checkIdempotencyKey(options.idempotencyKey)
        data = options.data
        signal = options.signal
      }
      const planned = this.plan(id, cost, data)
      if (planned instanceof Promise) {
        return planned.then((plan) => this.consumePlan(plan, idempotency && this.recordKey(plan, 'consume', idempotency), signal))
      }
      const result = this.consumePlan(planned, idempotency && this.recordKey(planned, 'consume', idempotency), signal)
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
    const op: CounterOp = { key: plan.key, delta: -plan.cost, min: 0, ifMissing: 'report' }
    const applied = await this.withErrorHook(plan, 'refund', () =>
      this.applyLoading([op], [plan], {
        idempotencyKey: idempotency && this.recordKey(plan, 'refund', idempotency),
        idempotencyTtlMs: this.config.idempotencyTtlMs,
        signal: options.signal,
      }),
    )
    const result = this.toResult(plan, applied, 0)
    callHook(result.allowed ? this.config.hooks.onRefund : this.config.hooks.onExceeded, this.event(plan, result))
    return result
  }

  async get(id: string, options: Pick<CallOptions<D>, 'signal' | 'data'> = {}): Promise<QuotaState> {
    checkCallOptions(options)
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
    checkCallOptions(options)
    checkCount('usage', usage)
    const plan = await this.plan(id, 0, options.data)
    await this.withErrorHook(plan, 'set', () => this.guarded.set(plan.key, usage, plan.ttlMs))
  }

  async reset(id: string, options: Pick<CallOptions<D>, 'data'> = {}): Promise<void> {
    checkCallOptions(options)
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
    checkCallOptions(options)
    const idempotency = checkIdempotencyKey(options.idempotencyKey)
    const plan = await this.plan(id, cost, options.data)
    const recordKey = idempotency && this.recordKey(plan, 'consume', idempotency)
    const result = await this.consumePlan(plan, recordKey, options.signal)
    if (!result.allowed) throw new QuotaExceededError(this.name, result)
    try {
      return await fn(result)
    } catch (error) {
      // A replay's units belong to the earlier call; unlimited and degraded calls counted nothing.
      const counted = !result.replayed && !result.unlimited && !result.degraded && plan.cost > 0
      if (counted && !options.irreversible) {
        const failure = await this.compensate(plan, recordKey, result.resetAt)
        if (failure !== undefined) {
          throw new CompensationError(`quota "${this.name}" could not give back ${plan.cost} unit(s) after the function failed`, {
            cause: error,
            compensationError: failure,
            pending: [{ quota: this.name, id: plan.id, cost: plan.cost }],
          })
        }
      }
      throw error
    }
  }

  // ---------------------------------------------------------------- internals shared with consumeAll

  /**
   * Validate a call's input and resolve cost, limit, key and lifetime. Touches no store.
   * Synchronous unless an option is a function (the hot path of constant options stays cheap).
   */
  plan(id: string, requestedCost: number, data: D | undefined): Plan<D> | Promise<Plan<D>> {
    checkString('id', id, MAX_ID_LENGTH)
    checkCount('cost', requestedCost)
    const { cost, limit, ttlMs, period } = this.config
    // Time is read before the store only by quotas that use it; see `usesTime`.
    const now = this.usesTime ? this.now() : undefined
    const window = period ? periodWindow(period, now!) : undefined
    const ctx: QuotaContext<D> = window
      ? { quota: this.name, data, periodStartAt: window.startAt }
      : { quota: this.name, data }
    const key = window ? counterKeyIn(this.keyPrefix, id, window.startAt) : this.counterKeys.get(id)
    if (cost === undefined && typeof limit !== 'function' && typeof ttlMs !== 'function') {
      return this.makePlan(id, requestedCost, limit, key, window ? window.endAt - now! : ttlMs, window?.endAt, ctx, now)
    }
    return (async () =>
      this.makePlan(
        id,
        cost ? checkCount('cost', await callOption('cost', () => cost(id, requestedCost, ctx))) : requestedCost,
        await this.resolveLimit(id, ctx),
        key,
        window ? window.endAt - now! : await this.resolveTtl(id, ctx),
        window?.endAt,
        ctx,
        now,
      ))()
  }

  /** One shape for every plan (the hot path stays monomorphic). */
  private makePlan(
    id: string,
    cost: number,
    limit: number | null,
    key: string,
    ttlMs: number | undefined,
    periodEndAt: number | undefined,
    ctx: QuotaContext<D>,
    now: number | undefined,
  ): Plan<D> {
    return { engine: this, id, cost, limit, key, ttlMs, periodEndAt, ctx, now }
  }

  /** Where a call's idempotency record lives: in the counter's hash-tag group, keyed by its cost too. */
  recordKey(plan: Plan<D>, operation: 'consume' | 'refund', key: string): string {
    return idempotencyKey(plan.key, operation, key, String(plan.cost))
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
   * The hot path: `consume(id, cost)` without options on a quota whose options are constants.
   * The same steps as `plan` + `consumePlan`, without building a plan unless the answer needs
   * one (a refusal, a counter to load, a hook to tell, a store fault): the input was checked by
   * the caller, the key needs no window, and a grant is mapped straight to its result.
   */
  private consumeConstant(constant: ConstantOptions, id: string, cost: number): Promise<QuotaResult> {
    const key = this.counterKeys.get(id)
    const ops: CounterOp[] = [{ key, delta: cost, max: constant.limit, ttlMs: constant.ttlMs, ifMissing: constant.ifMissing }]
    let now: number | undefined
    try {
      // A quota with a TTL checks its clock before the store is touched (see `usesTime`).
      if (constant.ttlMs !== undefined) now = this.now()
    } catch (error) {
      return Promise.reject(error)
    }
    try {
      const applied = this.store.apply(ops, NO_APPLY_OPTIONS)
      if (isPromiseLike(applied)) {
        return Promise.resolve(applied).then(
          (answer) => this.constantApplied(constant, id, cost, ops, answer, now),
          (error: unknown) => this.consumeFailed(this.constantPlan(constant, id, cost, key, now), typedStoreError(error, undefined)),
        )
      }
      const result = this.constantApplied(constant, id, cost, ops, applied, now)
      return result instanceof Promise ? result : Promise.resolve(result)
    } catch (error) {
      try {
        return Promise.resolve(this.consumeFailed(this.constantPlan(constant, id, cost, key, now), typedStoreError(error, undefined)))
      } catch (failure) {
        return Promise.reject(failure)
      }
    }
  }

  private constantApplied(
    constant: ConstantOptions,
    id: string,
    cost: number,
    ops: CounterOp[],
    applied: ApplyResult,
    now: number | undefined,
  ): QuotaResult | Promise<QuotaResult> {
    if (!applied.ok || this.config.hooks.onConsume !== undefined) {
      return this.consumeApplied(this.constantPlan(constant, id, cost, ops[0]!.key, now), ops, NO_APPLY_OPTIONS, applied)
    }
    const usage = applied.values[0]!
    const limit = constant.limit
    const result: QuotaResult = { allowed: true, usage, limit, remaining: limit > usage ? limit - usage : 0 }
    const ttlMs = applied.ttlMs?.[0]
    if (ttlMs !== undefined) result.resetAt = (now ?? this.now()) + ttlMs
    return result
  }

  private constantPlan(constant: ConstantOptions, id: string, cost: number, key: string, now: number | undefined): Plan<D> {
    return this.makePlan(id, cost, constant.limit, key, constant.ttlMs, undefined, { quota: this.name, data: undefined }, now)
  }

  /**
   * Consume a plan's cost. Synchronous when the store answered synchronously and no load was
   * needed (the memory store's hot path); a promise otherwise.
   */
  consumePlan(plan: Plan<D>, recordKey: string | undefined, signal: AbortSignal | undefined): QuotaResult | Promise<QuotaResult> {
    if (plan.limit === null) return this.unlimited(plan)
    const ops = [this.consumeOp(plan)]
    const options: ApplyOptions =
      recordKey === undefined && signal === undefined
        ? NO_APPLY_OPTIONS
        : { idempotencyKey: recordKey, idempotencyTtlMs: this.config.idempotencyTtlMs, signal }
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

  /** Apply ops; when one reports a missing counter whose quota can load, load it and try again. */
  async applyLoading(ops: readonly CounterOp[], plans: readonly Plan<any>[], options: ApplyOptions): Promise<ApplyResult> {
    // Each round loads at most one counter; a counter that vanishes again right away (a TTL
    // shorter than the load) gets a few more rounds, then the call fails rather than spin.
    const maxRounds = ops.length + 3
    for (let round = 0; round < maxRounds; round++) {
      options.signal?.throwIfAborted()
      const applied = await this.applyOnce(ops, options)
      if (applied.ok || applied.reason !== 'missing') return applied
      const plan = plans[applied.index]!
      if (!plan.engine.config.loadUsage) return applied
      await plan.engine.load(plan, options.signal)
    }
    throw new LoadError(`counters of quota "${this.name}" went missing again right after being loaded`)
  }

  load(plan: Plan<D>, signal?: AbortSignal): Promise<void> {
    const loadUsage = this.config.loadUsage!
    return this.loader.load(
      {
        key: plan.key,
        ttlMs: plan.ttlMs,
        readUsage: () => readUsage(() => loadUsage(plan.id, plan.ctx)),
        onLoaded: (usage, durationMs) =>
          callHook(this.config.hooks.onLoad, { quota: this.name, id: plan.id, usage, durationMs, data: plan.ctx.data }),
      },
      signal,
    )
  }

  /**
   * Give back a plan's cost on the engine's own initiative, clearing the idempotency record of
   * the call it undoes in the same atomic step. Returns the failure, if any.
   */
  async compensate(plan: Plan<D>, clearIdempotencyKey: string | undefined, grantedResetAt?: number): Promise<unknown> {
    const op: CounterOp = { key: plan.key, delta: -plan.cost, min: 0, ifMissing: 'report' }
    try {
      const successor = await this.successorCounter(plan, grantedResetAt)
      if (successor) {
        if (clearIdempotencyKey) await this.guarded.delete(clearIdempotencyKey)
        const result = this.toResult(plan, { ok: false, index: 0, reason: 'missing', values: [successor.value], ttlMs: [successor.ttlMs] }, 0)
        callHook(this.config.hooks.onCompensate, { quota: this.name, id: plan.id, cost: plan.cost, result, data: plan.ctx.data })
        return undefined
      }
      const applied = await this.guarded.apply([op], clearIdempotencyKey ? { clearIdempotencyKey } : {})
      // Refused means the units are already gone (the counter expired, was reset, or someone
      // else refunded it to the floor): nothing is left to give back, but the call's record
      // must still go, or a retry would replay a grant whose units no longer exist.
      if (!applied.ok && clearIdempotencyKey) await this.guarded.delete(clearIdempotencyKey)
      const result = this.toResult(plan, applied, 0)
      callHook(this.config.hooks.onCompensate, { quota: this.name, id: plan.id, cost: plan.cost, result, data: plan.ctx.data })
      return undefined
    } catch (error) {
      callHook(this.config.hooks.onCompensate, { quota: this.name, id: plan.id, cost: plan.cost, error, data: plan.ctx.data })
      return error
    }
  }

  /**
   * The counter now at a ttl-bounded plan's key when it is not the one that granted the units:
   * ours expired while the caller's work ran and another call created a new one, which never
   * held our units. Told by its expiry: a counter created after ours expired ends at least
   * `ttlMs` after ours did (we allow half of it for clock reading jitter). Period counters need
   * no check (each window has its own key). The read and the give-back are two steps, so a
   * counter that expires in between is not caught; see the README's limits.
   */
  private async successorCounter(plan: Plan<D>, grantedResetAt: number | undefined) {
    if (grantedResetAt === undefined || plan.periodEndAt !== undefined || plan.ttlMs === undefined) return undefined
    const snapshot = await this.guarded.get(plan.key)
    if (!snapshot) return undefined
    const endsAt = snapshot.ttlMs === undefined ? Number.POSITIVE_INFINITY : this.config.clock() + snapshot.ttlMs
    return endsAt - grantedResetAt > plan.ttlMs / 2 ? snapshot : undefined
  }

  /** Map the store's answer for op `index` to a QuotaResult. */
  toResult(plan: Plan<D>, applied: ApplyResult, index: number): QuotaResult {
    const limit = plan.limit ?? Infinity
    const usage = applied.values[index] ?? 0
    const resetAt = this.resetAt(plan, applied.ttlMs?.[index])
    const result: QuotaResult = { allowed: applied.ok, usage, limit, remaining: Math.max(limit - usage, 0) }
    if (resetAt !== undefined) result.resetAt = resetAt
    if (applied.ok) {
      if (applied.replayed) result.replayed = true
    } else {
      // 'missing' reaches here only for a refund without loadUsage: nothing to give back.
      result.reason = applied.reason === 'limit' ? 'limit' : 'floor'
    }
    return result
  }

  /** Hooks for a finished consume. */
  notify(plan: Plan<D>, result: QuotaResult): void {
    const hook = result.allowed ? this.config.hooks.onConsume : this.config.hooks.onExceeded
    if (hook) callHook(hook, this.event(plan, result))
  }

  /** Apply `onStoreError` to a consume that failed; returns a result unless the error must propagate. */
  onStoreFault(plan: Plan<D>, error: unknown): QuotaResult | undefined {
    if (!StoreError.isInstance(error) || this.config.onStoreError === 'throw') return undefined
    const limit = plan.limit ?? Infinity
    const allowed = this.config.onStoreError === 'allow'
    const result: QuotaResult = allowed
      ? { allowed: true, degraded: true, usage: 0, limit, remaining: limit }
      : { allowed: false, reason: 'store', usage: 0, limit, remaining: 0 }
    this.notify(plan, result)
    return result
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
    const result: QuotaResult = { allowed: true, unlimited: true, usage: 0, limit: Infinity, remaining: Infinity }
    if (hook) callHook(hook, this.event(plan, result))
    return result
  }

  private event(plan: Plan<D>, result: QuotaResult) {
    return { quota: this.name, id: plan.id, cost: plan.cost, result, data: plan.ctx.data }
  }

  private resetAt(plan: Plan<D>, ttlMs: number | undefined): number | undefined {
    if (plan.periodEndAt !== undefined) return plan.periodEndAt
    if (ttlMs === undefined) return undefined
    plan.now ??= this.now()
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

  /** The quota's clock, checked: every time the engine derives comes from it. */
  private now(): number {
    const now = this.config.clock()
    if (!Number.isSafeInteger(now) || now < 0) throw new InvalidArgumentError('clock', `must return epoch ms, got ${String(now)}`)
    return now
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

/**
 * Create a quota: a named limit over usage counters in a `CounterStore`.
 *
 * Constant options are validated now (throws `InvalidArgumentError` naming the option);
 * function-valued options are validated on each call, before the store is touched.
 *
 * Guarantees, on any store whose `capabilities.atomic` covers the callers: usage never passes
 * the limit and never drops below zero; a refused call changes nothing; a counter's TTL is set
 * when it is created and never re-armed.
 *
 * @param options - see `QuotaOptions`: `name`, `store`, `limit` (number, null or function),
 *   `loadUsage`, `ttlMs`, `period`, `lock`, `limitCacheTtlMs`, `onStoreError`, `cost`,
 *   `idempotencyTtlMs`, `clock`, `hooks`.
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
