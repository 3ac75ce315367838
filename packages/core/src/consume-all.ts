import { createHash } from 'node:crypto'
import { callHook } from './async.js'
import { CompensationError, InvalidArgumentError, QuotaExceededError, StoreError, toStoreError } from './errors.js'
import { idempotencyKey } from './keys.js'
import { type Plan, QuotaEngine, checkIdempotencyKey } from './quota.js'
import { checkCallOptions, checkFunction } from './validate.js'
import type { ConsumeAllItem, ConsumeAllResult, QuotaResult } from './types.js'

/** Options of `consumeAll`. */
export interface ConsumeAllOptions {
  /** Makes the whole call safe to retry (see `CallOptions.idempotencyKey`). */
  idempotencyKey?: string
  signal?: AbortSignal
}

async function planItems(items: readonly ConsumeAllItem[]): Promise<Plan<any>[]> {
  if (!Array.isArray(items) || items.length === 0) throw new InvalidArgumentError('items', 'must be a non-empty array')
  return Promise.all(
    items.map(async (item, index) => {
      if (!(item?.quota instanceof QuotaEngine)) {
        throw new InvalidArgumentError(`items[${index}].quota`, 'must be a quota made by createQuota of this copy of @andromeda/core')
      }
      try {
        // Only a missing cost defaults to 1: null is a bad cost here as in consume().
        return await item.quota.plan(item.id, item.cost === undefined ? 1 : item.cost, item.data)
      } catch (error) {
        if (!InvalidArgumentError.isInstance(error)) throw error
        throw new InvalidArgumentError(`items[${index}].${error.argument}`, error.message.slice(error.argument.length + 2))
      }
    }),
  )
}

/**
 * Consume from several quotas, all or nothing: either every item is granted or none stays
 * consumed (the Go original's multi-quota, made atomic).
 *
 * When every counted item lives in one store that can apply their keys together (the memory
 * store always; Redis when the keys share a slot), it is one atomic `apply`. Otherwise it is a
 * saga: items are consumed in order and, on a refusal or a store fault, what was granted is
 * given back (`onCompensate` fires for each).
 *
 * @returns `{ allowed, results, refused? }`; `refused.index` is the first refused item.
 * @throws InvalidArgumentError for bad items (named `items[i].cost` etc.) before any change.
 * @throws StoreError when the store fails (after giving back what was granted), unless every
 *   quota's `onStoreError` says otherwise; CompensationError when that give-back failed too.
 *
 * @example
 * ```ts
 * const { allowed, refused } = await consumeAll([
 *   { quota: vouchers, id: 'SUMMER24' },
 *   { quota: perUser, id: `${userId}:SUMMER24` },
 * ])
 * if (!allowed) console.log('refused by', refused?.quota)
 * ```
 */
export async function consumeAll(items: readonly ConsumeAllItem[], options: ConsumeAllOptions = {}): Promise<ConsumeAllResult> {
  return (await consumeAllWithUndo(items, options)).result
}

/** Options of `transactAll`. */
export interface TransactAllOptions extends ConsumeAllOptions {
  /** When true, units stay consumed even if `fn` throws (the work cannot be undone). */
  irreversible?: boolean
}

/**
 * `consumeAll`, then run `fn`, and give every unit back if `fn` throws (unless `irreversible`):
 * the multi-quota form of `transact`. The give-back is one atomic store call when the items
 * were consumed in one, fires `onCompensate` for each item and clears the call's idempotency
 * record, so a retry with the same key is evaluated afresh.
 *
 * @returns what `fn` returns.
 * @throws QuotaExceededError when an item was refused (`fn` does not run); `.result` is that
 *   item's result. `fn`'s own error after giving the units back, or CompensationError when the
 *   give-back failed too. InvalidArgumentError / StoreError as `consumeAll`.
 *
 * @example
 * ```ts
 * const claim = await transactAll(
 *   [{ quota: vouchers, id: code }, { quota: perUser, id: `${user}:${code}` }],
 *   () => db.insertClaim(code, user), // throws on a duplicate: both units go back
 * )
 * ```
 */
export async function transactAll<T>(
  items: readonly ConsumeAllItem[],
  fn: (result: ConsumeAllResult) => T | Promise<T>,
  options: TransactAllOptions = {},
): Promise<T> {
  checkFunction('fn', fn)
  const { result, undo } = await consumeAllWithUndo(items, options)
  if (!result.allowed) {
    const index = result.refused?.index ?? 0
    throw new QuotaExceededError(result.refused?.quota ?? 'unknown', result.results[index]!)
  }
  try {
    return await fn(result)
  } catch (error) {
    if (!options.irreversible) await undo(error)
    throw error
  }
}

/** What `consumeAll` decided, and how to give back exactly what this call counted. */
interface Outcome {
  result: ConsumeAllResult
  undo(cause: unknown): Promise<void>
}

const NOTHING_TO_UNDO = async () => {}

async function consumeAllWithUndo(items: readonly ConsumeAllItem[], options: ConsumeAllOptions): Promise<Outcome> {
  checkCallOptions(options)
  const idempotency = checkIdempotencyKey(options.idempotencyKey)
  const plans = await planItems(items)
  const counted = plans.flatMap((plan, index) => (plan.limit === null ? [] : [index]))
  const results: QuotaResult[] = plans.map(() => ({ allowed: true, unlimited: true, usage: 0, limit: Infinity, remaining: Infinity }))
  if (counted.length === 0) return { result: { allowed: true, results }, undo: NOTHING_TO_UNDO }

  const first = plans[counted[0]!]!
  const store = first.engine.store
  const recordKey = idempotency && idempotencyKey(first.key, 'all', idempotency, requestDigest(counted.map((i) => plans[i]!)))
  const together =
    counted.every((i) => plans[i]!.engine.store === store) &&
    store.capabilities.canApplyTogether(recordKey ? [...counted.map((i) => plans[i]!.key), recordKey] : counted.map((i) => plans[i]!.key))

  return together
    ? atomically(plans, counted, results, recordKey, options.signal)
    : saga(plans, counted, results, idempotency && `${idempotency}#${requestDigest(counted.map((i) => plans[i]!))}`, options.signal)
}

async function atomically(
  plans: Plan<any>[],
  counted: number[],
  results: QuotaResult[],
  recordKey: string | undefined,
  signal: AbortSignal | undefined,
): Promise<Outcome> {
  const countedPlans = counted.map((i) => plans[i]!)
  const engine = countedPlans[0]!.engine
  let applied: Awaited<ReturnType<typeof engine.applyLoading>>
  try {
    applied = await engine.applyLoading(
      countedPlans.map((plan) => plan.engine.consumeOp(plan)),
      countedPlans,
      { idempotencyKey: recordKey, idempotencyTtlMs: engine.config.idempotencyTtlMs, signal },
    )
  } catch (error) {
    return { result: storeFault(plans, counted, results, error), undo: NOTHING_TO_UNDO }
  }
  countedPlans.forEach((plan, k) => {
    results[counted[k]!] = plan.engine.toResult(plan, applied, k)
  })
  if (applied.ok) {
    for (const [k, plan] of countedPlans.entries()) plan.engine.notify(plan, results[counted[k]!]!)
    // A replay's units belong to the earlier call: there is nothing of this call's to give back.
    if (applied.replayed) return { result: { allowed: true, results, replayed: true }, undo: NOTHING_TO_UNDO }
    const resetAts = counted.map((i) => results[i]!.resetAt)
    return { result: { allowed: true, results }, undo: (cause) => compensateTogether(countedPlans, resetAts, recordKey, cause) }
  }
  const index = counted[applied.index]!
  const refusedPlan = plans[index]!
  // Nothing was applied: every item is reported at its current usage; the store checked the
  // ops in order and stopped at the refused one, so the items before it had room.
  for (const i of counted) results[i] = { ...results[i]!, allowed: false, reason: i < index ? 'rolled-back' : 'not-tried' }
  results[index] = refusedPlan.engine.toResult(refusedPlan, applied, applied.index)
  refusedPlan.engine.notify(refusedPlan, results[index]!)
  return {
    result: { allowed: false, results, refused: { index, quota: refusedPlan.engine.name, reason: refusalReason(results[index]!) } },
    undo: NOTHING_TO_UNDO,
  }
}

/** Why the refused item itself was refused (a store's own refusal is over the limit or below zero). */
function refusalReason(result: QuotaResult): 'limit' | 'floor' | 'store' {
  return result.reason === 'floor' || result.reason === 'store' ? result.reason : 'limit'
}

/** A short digest of which counters a multi-quota request charges, and how much. */
function requestDigest(plans: Plan<any>[]): string {
  const hash = createHash('sha256')
  for (const plan of plans) hash.update(`${plan.key}\u0000${plan.cost}\u0000`)
  return hash.digest('base64url').slice(0, 16)
}

/**
 * Give back every item of an atomic consumeAll in one atomic apply, clearing its record. When
 * that is refused (one counter expired, was reset or was refunded meanwhile), the items are
 * given back one by one instead, so one vanished counter never keeps the others' units.
 */
async function compensateTogether(
  plans: Plan<any>[],
  resetAts: (number | undefined)[],
  recordKey: string | undefined,
  cause: unknown,
): Promise<void> {
  // One by one: the record sits in the first item's hash-tag group, so its give-back clears it.
  const oneByOne = () => rollback(
    plans.map((plan, k) => ({ plan, recordKey: k === 0 ? recordKey : undefined, resetAt: resetAts[k] })),
    cause,
  )
  // A ttl-bounded counter may have been replaced while `fn` ran: each item is checked on its own.
  if (plans.some((plan) => plan.ttlMs !== undefined && plan.periodEndAt === undefined)) return oneByOne()
  const engine = plans[0]!.engine
  const ops = plans.map((plan) => ({ key: plan.key, delta: -plan.cost, min: 0, ifMissing: 'report' as const }))
  let failure: unknown
  try {
    const applied = await engine.store.apply(ops, recordKey ? { clearIdempotencyKey: recordKey } : {})
    if (!applied.ok) return oneByOne()
    for (const [k, plan] of plans.entries()) {
      const result = plan.engine.toResult(plan, applied, k)
      callHook(plan.engine.config.hooks.onCompensate, { quota: plan.engine.name, id: plan.id, cost: plan.cost, result, data: plan.ctx.data })
    }
    return
  } catch (error) {
    failure = toStoreError(error)
  }
  for (const plan of plans) {
    callHook(plan.engine.config.hooks.onCompensate, { quota: plan.engine.name, id: plan.id, cost: plan.cost, error: failure, data: plan.ctx.data })
  }
  throw new CompensationError(`transactAll could not give back ${plans.length} item(s) after the function failed`, {
    cause,
    compensationError: failure,
    pending: plans.map((plan) => ({ quota: plan.engine.name, id: plan.id, cost: plan.cost })),
  })
}

async function saga(
  plans: Plan<any>[],
  counted: number[],
  results: QuotaResult[],
  idempotency: string | undefined,
  signal: AbortSignal | undefined,
): Promise<Outcome> {
  const granted: Granted[] = []
  let replayedAll = true
  for (const index of counted) {
    const plan = plans[index]!
    // Each step keeps its own record, in its own counter's hash-tag group (never cross-slot).
    const recordKey = idempotency && idempotencyKey(plan.key, 'all', `${idempotency}#${index}`, String(plan.cost))
    let result: QuotaResult
    try {
      signal?.throwIfAborted()
      const applied = await plan.engine.applyLoading([plan.engine.consumeOp(plan)], [plan], {
        idempotencyKey: recordKey,
        idempotencyTtlMs: plan.engine.config.idempotencyTtlMs,
        signal,
      })
      result = plan.engine.toResult(plan, applied, 0)
    } catch (error) {
      await rollback(granted, error)
      return { result: storeFault(plans, counted, results, error), undo: NOTHING_TO_UNDO }
    }
    results[index] = result
    plan.engine.notify(plan, result)
    if (!result.allowed) {
      await rollback(granted, undefined)
      // Nothing stays granted: like the atomic path, every other item reports what became of
      // it at its usage after the call (not a stale pre-rollback usage, nor the placeholder of
      // an item the saga never reached).
      await Promise.all(
        counted.map(async (i) => {
          if (i !== index) results[i] = await notGranted(plans[i]!, i < index ? 'rolled-back' : 'not-tried')
        }),
      )
      return {
        result: { allowed: false, results, refused: { index, quota: plan.engine.name, reason: refusalReason(result) } },
        undo: NOTHING_TO_UNDO,
      }
    }
    replayedAll &&= result.replayed === true
    // A replayed step's units belong to the earlier call that was granted them: a rollback of
    // this call must not give them back (nor clear that call's record).
    if (!result.replayed) granted.push({ plan, recordKey, resetAt: result.resetAt })
  }
  return {
    result: replayedAll ? { allowed: true, results, replayed: true } : { allowed: true, results },
    undo: (cause) => rollback(granted, cause),
  }
}

/** The result of an item that is not granted because another item was refused. */
async function notGranted(plan: Plan<any>, reason: 'rolled-back' | 'not-tried'): Promise<QuotaResult> {
  let snapshot: Awaited<ReturnType<typeof plan.engine.store.get>>
  try {
    snapshot = await plan.engine.store.get(plan.key)
  } catch {
    // Only the reported usage is lost: the refusal and the rollback stand either way.
    snapshot = undefined
  }
  const result = plan.engine.toResult(plan, { ok: false, index: 0, reason: 'limit', values: [snapshot?.value], ttlMs: [snapshot?.ttlMs] }, 0)
  return { ...result, reason }
}

/** Give back every granted step, newest first. Throws CompensationError if any refund failed. */
/** A unit grant a rollback may have to give back: its plan, its call's record, its counter's reset time. */
interface Granted {
  plan: Plan<any>
  recordKey: string | undefined
  resetAt: number | undefined
}

async function rollback(granted: Granted[], cause: unknown): Promise<void> {
  const pending: { quota: string; id: string; cost: number }[] = []
  let lastFailure: unknown
  for (const { plan, recordKey, resetAt } of [...granted].reverse()) {
    const failure = await plan.engine.compensate(plan, recordKey, resetAt)
    if (failure !== undefined) {
      pending.push({ quota: plan.engine.name, id: plan.id, cost: plan.cost })
      lastFailure = failure
    }
  }
  if (pending.length > 0) {
    throw new CompensationError(`consumeAll could not give back ${pending.length} granted item(s)`, {
      cause: cause ?? lastFailure,
      compensationError: lastFailure,
      pending,
    })
  }
}

/**
 * A store fault after nothing stays granted: reject, or answer per `onStoreError` when every
 * counted quota agrees on 'allow' or one says 'deny'.
 */
function storeFault(plans: Plan<any>[], counted: number[], results: QuotaResult[], error: unknown): ConsumeAllResult {
  if (!StoreError.isInstance(error)) throw error
  const policies = counted.map((i) => plans[i]!.engine.config.onStoreError)
  if (policies.includes('throw')) throw error
  const index = policies.indexOf('deny')
  for (const i of counted) results[i] = plans[i]!.engine.onStoreFault(plans[i]!, error)!
  if (index === -1) return { allowed: true, results }
  const refusedIndex = counted[index]!
  for (const i of counted) results[i] = { ...results[i]!, allowed: false, reason: 'store' }
  return { allowed: false, results, refused: { index: refusedIndex, quota: plans[refusedIndex]!.engine.name, reason: 'store' } }
}
