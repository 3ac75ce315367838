import { LRUCache } from 'lru-cache'
import { callHook } from './async.js'
import { type QuotaConfig, resolveConfig } from './config.js'
import { CompensationError, InvalidArgumentError, LoadError, QuotaExceededError, StoreError } from './errors.js'
import { guardStore, typedStoreError } from './guarded-store.js'
import { counterKey, idempotencyKey } from './keys.js'
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
import { MAX_ID_LENGTH, checkCallOptions, checkCount, checkDurationMs, checkFunction, checkString } from './validate.js'

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
  /** Clock reading when the plan was made; resetAt is computed from it. */
  now: number
}

/** Run a user's option function; whatever it throws becomes a LoadError naming the option. */
async function callOption<T>(option: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (error) {
    throw new LoadError(`the ${option} function failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error })
  }
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

/** The quota engine behind `createQuota`. */
export class QuotaEngine<D = unknown> implements Quota<D> {
  readonly name: string
  readonly store: CounterStore
  /** Internal: validated options. */
  readonly config: QuotaConfig<D>
  private readonly guarded: CounterStore
  private readonly loader: Loader
  private readonly limitCache: LRUCache<string, { limit: number | null }> | undefined

  constructor(options: QuotaOptions<D>) {
    this.config = resolveConfig(options)
    this.name = this.config.name
    this.store = this.config.store
    this.guarded = guardStore(this.store)
    this.loader = new Loader(this.guarded, this.config.lock)
    this.limitCache =
      this.config.limitCacheTtlMs !== undefined && typeof this.config.limit === 'function'
        ? new LRUCache({ max: 10_000, ttl: this.config.limitCacheTtlMs })
        : undefined
    warnIfProcessAtomicShared(this.store)
  }

  // ---------------------------------------------------------------- public API

  consume(id: string, cost = 1, options: CallOptions<D> = {}): Promise<QuotaResult> {
    // Not `async`: the hot path (constant options) runs with one promise, the result's own.
    try {
      checkCallOptions(options)
      const idempotency = checkIdempotencyKey(options.idempotencyKey)
      const planned = this.plan(id, cost, options.data)
      const start = (plan: Plan<D>) =>
        this.consumePlan(plan, idempotency && this.recordKey(plan, 'consume', idempotency), options.signal)
      return planned instanceof Promise ? planned.then(start) : start(planned)
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
    const now = this.config.clock()
    if (!Number.isSafeInteger(now) || now < 0) throw new InvalidArgumentError('clock', `must return epoch ms, got ${String(now)}`)
    const window = this.config.period ? periodWindow(this.config.period, now) : undefined
    const ctx: QuotaContext<D> = window
      ? { quota: this.name, data, periodStartAt: window.startAt }
      : { quota: this.name, data }
    const { cost, limit, ttlMs } = this.config
    const make = (resolvedCost: number, resolvedLimit: number | null, resolvedTtlMs: number | undefined): Plan<D> => ({
      engine: this,
      id,
      cost: resolvedCost,
      limit: resolvedLimit,
      key: counterKey(this.name, id, window?.startAt),
      ttlMs: window ? window.endAt - now : resolvedTtlMs,
      periodEndAt: window?.endAt,
      ctx,
      now,
    })
    if (cost === undefined && typeof limit !== 'function' && typeof ttlMs !== 'function') return make(requestedCost, limit, ttlMs)
    return (async () =>
      make(
        cost ? checkCount('cost', await callOption('cost', () => cost(id, requestedCost, ctx))) : requestedCost,
        await this.resolveLimit(id, ctx),
        window ? undefined : await this.resolveTtl(id, ctx),
      ))()
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

  async consumePlan(plan: Plan<D>, recordKey: string | undefined, signal: AbortSignal | undefined): Promise<QuotaResult> {
    if (plan.limit === null) return this.unlimited(plan)
    let applied: ApplyResult
    try {
      const ops = [this.consumeOp(plan)]
      const options: ApplyOptions = { idempotencyKey: recordKey, idempotencyTtlMs: this.config.idempotencyTtlMs, signal }
      signal?.throwIfAborted()
      // Common case first: one apply on a present counter, no loading round.
      const first = this.applyOnce(ops, options)
      applied = first instanceof Promise ? await first : first
      if (!applied.ok && applied.reason === 'missing') applied = await this.applyLoading(ops, [plan], options)
    } catch (error) {
      this.reportError(plan, 'consume', error)
      const degraded = this.onStoreFault(plan, error)
      if (degraded) return degraded
      throw error
    }
    const result = this.toResult(plan, applied, 0)
    this.notify(plan, result)
    return result
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
    callHook(result.allowed ? this.config.hooks.onConsume : this.config.hooks.onExceeded, this.event(plan, result))
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

  /** One store apply with typed errors; synchronous when the store offers `applySync`. */
  private applyOnce(ops: readonly CounterOp[], options: ApplyOptions): ApplyResult | Promise<ApplyResult> {
    if (!this.store.applySync) return this.guarded.apply(ops, options)
    try {
      return this.store.applySync(ops, options)
    } catch (error) {
      throw typedStoreError(error, options.signal)
    }
  }

  /** An id without a quota: allowed, nothing counted; told to the hook of the operation (consume or refund). */
  private unlimited(plan: Plan<D>, hook = this.config.hooks.onConsume): QuotaResult {
    const result: QuotaResult = { allowed: true, unlimited: true, usage: 0, limit: Infinity, remaining: Infinity }
    callHook(hook, this.event(plan, result))
    return result
  }

  private event(plan: Plan<D>, result: QuotaResult) {
    return { quota: this.name, id: plan.id, cost: plan.cost, result, data: plan.ctx.data }
  }

  private resetAt(plan: Plan<D>, ttlMs: number | undefined): number | undefined {
    if (plan.periodEndAt !== undefined) return plan.periodEndAt
    return ttlMs === undefined ? undefined : plan.now + ttlMs
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
