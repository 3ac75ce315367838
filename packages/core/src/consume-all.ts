import { createHash } from 'node:crypto'
import { callHook } from './async.js'
import { CompensationError, HoldExpiredError, InvalidArgumentError, QuotaExceededError, StoreError } from './errors.js'
import { idempotencyKey } from './keys.js'
import type { Plan } from './plan.js'
import { type QuotaEngine, checkIdempotencyKey, holdIdOf } from './quota.js'
import { settleOp } from './reservation.js'
import { asRefused, refusedResult, unlimitedResult } from './result.js'
import type { ApplyResult, CounterOp } from './store.js'
import type { ConsumeAllItem, ConsumeAllResult, QuotaResult, Reservation, ReservationAll } from './types.js'
import { checkCallOptions, checkDurationMs, checkFunction } from './validate.js'

/** Options of `consumeAll`. */
export interface ConsumeAllOptions {
  /** Makes the whole call safe to retry (see `CallOptions.idempotencyKey`). */
  idempotencyKey?: string
  signal?: AbortSignal
}

/** Options of `reserveAll`. */
export interface ReserveAllOptions extends ConsumeAllOptions {
  /** How long the units are held unless committed or released (ms). Default: the first item's quota's `holdMs`. */
  holdMs?: number
}

/** Options of `transactAll`. */
export interface TransactAllOptions extends ReserveAllOptions {
  /** When true, units stay consumed even if `fn` throws (the work cannot be undone). */
  irreversible?: boolean
}

const ALL_OPTION_KEYS = ['idempotencyKey', 'signal']
const RESERVE_ALL_OPTION_KEYS = [...ALL_OPTION_KEYS, 'holdMs']
const TRANSACT_ALL_OPTION_KEYS = [...RESERVE_ALL_OPTION_KEYS, 'irreversible']

/** One item, resolved: its quota's engine and its plan. */
interface Item {
  engine: QuotaEngine<any>
  plan: Plan<any>
}

/** The engine behind a quota made by `createQuota` (of this copy of core). */
function engineOf(quota: unknown, index: number): QuotaEngine<any> {
  const engine = quota as Partial<QuotaEngine<any>> | null
  if (typeof engine?.plan !== 'function' || typeof engine.consumePlan !== 'function' || engine.planner === undefined) {
    throw new InvalidArgumentError(`items[${index}].quota`, 'must be a quota made by createQuota of this copy of @andromeda/core')
  }
  return engine as QuotaEngine<any>
}

async function planItems(items: readonly ConsumeAllItem[]): Promise<Item[]> {
  if (!Array.isArray(items) || items.length === 0) throw new InvalidArgumentError('items', 'must be a non-empty array')
  return Promise.all(
    items.map(async (item, index) => {
      const engine = engineOf(item?.quota, index)
      try {
        // Only a missing cost defaults to 1: null is a bad cost here as in consume().
        return { engine, plan: await engine.plan(item.id, item.cost === undefined ? 1 : item.cost, item.data) }
      } catch (error) {
        if (!InvalidArgumentError.isInstance(error)) throw error
        throw new InvalidArgumentError(`items[${index}].${error.argument}`, error.message.slice(error.argument.length + 2))
      }
    }),
  )
}

/** A short digest of which counters a multi-quota request charges, and how much. */
function requestDigest(items: Item[]): string {
  const hash = createHash('sha256')
  // The (quota, id) groups and window kinds, not the window's counters: a retry of the same
  // request after a window changed is the same request.
  for (const { engine, plan } of items) hash.update(`${engine.planner.groupOf(plan.id)}\u0000${engine.planner.windowKind}\u0000${plan.cost}\u0000`)
  return hash.digest('base64url').slice(0, 16)
}

/** What a multi-quota call resolved: its items, the counted ones, and whether one atomic apply can cover them. */
interface Request {
  items: Item[]
  counted: number[]
  results: QuotaResult[]
  /** The record of an atomic call (in the first counted item's group), when there is a key. */
  recordKey: string | undefined
  together: boolean
  /** The request's key and digest, from which a saga's per-item keys are made. */
  sagaKey: string | undefined
}

async function resolve(items: readonly ConsumeAllItem[], options: ConsumeAllOptions, operation: 'all' | 'reserve-all'): Promise<Request> {
  checkCallOptions(options, operation === 'all' ? ALL_OPTION_KEYS : RESERVE_ALL_OPTION_KEYS)
  const idempotency = checkIdempotencyKey(options.idempotencyKey)
  const resolved = await planItems(items)
  const counted = resolved.flatMap(({ plan }, index) => (plan.limit === null ? [] : [index]))
  const results = resolved.map(() => unlimitedResult())
  const countedItems = counted.map((i) => resolved[i]!)
  const first = countedItems[0]
  const digest = idempotency && requestDigest(countedItems)
  const recordKey = first && idempotency && idempotencyKey(first.engine.planner.groupOf(first.plan.id), operation === 'all' ? 'all' : 'reserve', idempotency, digest, first.engine.planner.windowKind)
  const keys = countedItems.map(({ plan }) => plan.key)
  const together =
    first !== undefined &&
    countedItems.every(({ engine }) => engine.store === first.engine.store) &&
    first.engine.store.capabilities.canApplyTogether(recordKey ? [...keys, recordKey] : keys)
  return { items: resolved, counted, results, recordKey, together, sagaKey: idempotency && `${idempotency}#${digest}` }
}

/**
 * Consume from several quotas, all or nothing: either every item is granted or none stays
 * consumed (the Go original's multi-quota, made atomic).
 *
 * When every counted item lives in one store that can apply their keys together (the memory
 * store always; Redis when the keys share a slot), it is one atomic `apply`. Otherwise it is a
 * saga on holds: items are reserved in order and, once all are held, committed; on a refusal
 * or a store fault the holds are released (`onCompensate` fires for each), and should this
 * process die meanwhile they come back by themselves after `holdMs`.
 *
 * @returns `{ allowed, results, refused? }`; `refused.index` is the first refused item, and the
 *   other counted items say `'rolled-back'` or `'not-tried'`.
 * @throws InvalidArgumentError for bad items (named `items[i].cost` etc.) before any change.
 * @throws StoreError when the store fails (after releasing what was held), unless every
 *   quota's `onStoreError` says otherwise; CompensationError when that release failed too.
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
  const request = await resolve(items, options, 'all')
  if (request.counted.length === 0) return { allowed: true, results: request.results }
  if (request.together) return atomically(request, options.signal, undefined)
  const held = await saga(request, options.signal, undefined)
  if (held.allowed) await held.commit()
  return resultOf(held)
}

/**
 * Reserve from several quotas, all or nothing, with one handle: `commit()` keeps every unit,
 * `release()` gives them all back, and holds neither committed nor released come back by
 * themselves after `holdMs`. One atomic `apply` when the store can cover every key, else
 * reserves in order (a refusal releases what was held).
 *
 * @throws as `consumeAll`.
 *
 * @example
 * ```ts
 * const held = await reserveAll([{ quota: perUser, id: `${user}:${code}` }, { quota: vouchers, id: code }], { holdMs: 30_000 })
 * if (!held.allowed) return refuse(held.refused)
 * try { await db.insertClaim(code, user) } catch (error) { await held.release(); throw error }
 * await held.commit()
 * ```
 */
export async function reserveAll(items: readonly ConsumeAllItem[], options: ReserveAllOptions = {}): Promise<ReservationAll> {
  const holdMs = options.holdMs === undefined ? undefined : checkDurationMs('holdMs', options.holdMs)
  const request = await resolve(items, options, 'reserve-all')
  if (request.counted.length === 0) return nothingHeld({ allowed: true, results: request.results })
  const held = request.together ? await atomicHolds(request, options.signal, holdMs) : await saga(request, options.signal, holdMs)
  return held
}

/**
 * `reserveAll`, then run `fn`, then commit; every unit goes back if `fn` throws (unless
 * `irreversible`): the multi-quota form of `transact`, on holds, so a process that dies while
 * `fn` runs gives the units back after `holdMs`.
 *
 * @returns what `fn` returns.
 * @throws QuotaExceededError when an item was refused (`fn` does not run); `.result` is that
 *   item's result. `fn`'s own error after releasing the units, or CompensationError when the
 *   release failed too. InvalidArgumentError / StoreError as `consumeAll`.
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
  checkCallOptions(options, TRANSACT_ALL_OPTION_KEYS)
  const { irreversible, ...reserveOptions } = options
  const held = await reserveAll(items, reserveOptions)
  if (!held.allowed) {
    const index = held.refused?.index ?? 0
    throw new QuotaExceededError(held.refused?.quota ?? 'unknown', held.results[index]!)
  }
  const result = resultOf(held)
  let value: T
  try {
    value = await fn(result)
  } catch (error) {
    // Irreversible work keeps its units; otherwise they all go back.
    if (irreversible) await held.commit()
    else await releaseAfter(held, items, error)
    throw error
  }
  await held.commit()
  return value
}

/** Release after `fn` failed; a release that fails too is a CompensationError carrying both. */
async function releaseAfter(held: ReservationAll, items: readonly ConsumeAllItem[], cause: unknown): Promise<void> {
  try {
    await held.release()
  } catch (failure) {
    if (CompensationError.isInstance(failure)) throw failure
    throw new CompensationError(`transactAll could not give back ${items.length} item(s) after the function failed`, {
      cause,
      compensationError: failure,
      pending: items.map((item) => ({ quota: item.quota.name, id: item.id, cost: item.cost ?? 1 })),
    })
  }
}

// ------------------------------------------------------------------ one atomic apply

/** Consume every counted item in one apply. */
async function atomically(request: Request, signal: AbortSignal | undefined, hold: { id: string; holdMs: number } | undefined): Promise<ConsumeAllResult> {
  const applied = await applyCounted(request, signal, hold)
  if (!('ok' in applied)) return applied
  return applied.ok ? grantedAll(request, applied) : refusedAll(request, applied)
}

/** Hold every counted item in one apply; the handle settles them together. */
async function atomicHolds(request: Request, signal: AbortSignal | undefined, holdMs: number | undefined): Promise<ReservationAll> {
  const first = request.items[request.counted[0]!]!
  const hold = { id: holdIdOf(request.recordKey), holdMs: holdMs ?? first.engine.config.holdMs }
  const applied = await applyCounted(request, signal, hold)
  if (!('ok' in applied)) return nothingHeld(applied)
  if (!applied.ok) return nothingHeld(refusedAll(request, applied))
  const result = grantedAll(request, applied)
  const held = request.counted.map((i) => request.items[i]!).filter(({ plan }) => plan.cost > 0)
  return handle(result, first.engine.planner.now() + hold.holdMs, held.length === 0, (commit) =>
    settleTogether(held, hold.id, commit, commit ? undefined : request.recordKey),
  )
}

/**
 * Settle the holds of an atomic reserveAll in one apply. When that is refused because a hold
 * is gone (its counter expired, or the hold did), each is settled on its own instead, so one
 * lost hold never keeps the others' units: a release skips it (its units are back), a commit
 * charges its units again where that is right (see `QuotaEngine.keep`), or throws
 * `HoldExpiredError` when that is refused.
 */
async function settleTogether(held: Item[], holdId: string, commit: boolean, clearIdempotencyKey: string | undefined): Promise<void> {
  const { engine } = held[0]!
  const keep = (item: Item) => (commit ? item.plan.cost : 0)
  const answer = await engine.retrying(true, undefined, async () =>
    engine.store.apply(
      held.map((item) => settleOp(item.plan, holdId, keep(item))),
      clearIdempotencyKey === undefined ? {} : { clearIdempotencyKey },
    ),
  )
  if (answer.ok) {
    if (!commit) for (const [k, item] of held.entries()) compensated(item, item.engine.toResult(item.plan, answer, k), undefined)
    return
  }
  if (answer.reason !== 'hold') throw new StoreError(`settling the holds was refused (${answer.reason})`, { retryable: false })
  for (const [k, item] of held.entries()) {
    // settleHold tells onCompensate of a release itself.
    const verdict = await item.engine.settleHold(item.plan, holdId, keep(item), k === 0 ? clearIdempotencyKey : undefined)
    if (typeof verdict !== 'string' || !commit) continue
    if (!(await item.engine.chargeAgainAfter(verdict, item.plan.id, item.plan.cost))) throw new HoldExpiredError(item.engine.name, item.plan.id, verdict)
  }
}

/** Tell `onCompensate` that the engine gave an item's units back on its own. */
function compensated({ engine, plan }: Item, result: QuotaResult | undefined, error: unknown): void {
  callHook(engine.config.hooks.onCompensate, { quota: engine.name, id: plan.id, cost: plan.cost, ...(result ? { result } : { error }), data: plan.ctx.data })
}

/** One apply for the counted items (holding them when `hold` is set); a store fault answers per `onStoreError`. */
async function applyCounted(
  request: Request,
  signal: AbortSignal | undefined,
  hold: { id: string; holdMs: number } | undefined,
): Promise<ApplyResult | ConsumeAllResult> {
  const countedItems = request.counted.map((i) => request.items[i]!)
  const first = countedItems[0]!
  const ops: CounterOp[] = countedItems.map(({ engine, plan }) => {
    const op = engine.consumeOp(plan)
    return hold !== undefined && plan.cost > 0 ? { ...op, hold } : op
  })
  try {
    return await first.engine.retrying(request.recordKey !== undefined, signal, () =>
      first.engine.applyLoading(
        ops,
        countedItems.map(({ plan }) => plan),
        { idempotencyKey: request.recordKey, idempotencyTtlMs: first.engine.config.idempotencyTtlMs, signal },
        countedItems.map(({ engine }) => engine),
      ),
    )
  } catch (error) {
    return storeFault(request, error)
  }
}

function grantedAll(request: Request, applied: Extract<ApplyResult, { ok: true }>): ConsumeAllResult {
  const { items, counted, results } = request
  counted.forEach((i, k) => {
    const { engine, plan } = items[i]!
    results[i] = engine.toResult(plan, applied, k)
    engine.notify(plan, results[i]!)
  })
  return applied.replayed ? { allowed: true, results, replayed: true } : { allowed: true, results }
}

function refusedAll(request: Request, applied: Extract<ApplyResult, { ok: false }>): ConsumeAllResult {
  const { items, counted, results } = request
  const index = counted[applied.index]!
  // Nothing was applied: every other item is not granted, at its current usage.
  counted.forEach((i, k) => {
    const { engine, plan } = items[i]!
    results[i] = asRefused(engine.toResult(plan, applied, k), i < index ? 'rolled-back' : 'not-tried')
  })
  const { engine, plan } = items[index]!
  results[index] = engine.toResult(plan, applied, applied.index)
  engine.notify(plan, results[index]!)
  const reason = results[index]!.reason === 'floor' ? 'floor' : 'limit'
  return { allowed: false, results, refused: { index, quota: engine.name, reason } }
}

// ------------------------------------------------------------------ the saga, on holds

/**
 * Reserve the counted items one by one, in order; on a refusal or a fault, release what was
 * held. Each step keeps its own record in its own counter's group (never cross-slot).
 */
async function saga(request: Request, signal: AbortSignal | undefined, holdMs: number | undefined): Promise<ReservationAll> {
  const { items, counted, results } = request
  const held: { engine: QuotaEngine<any>; id: string; hold: Reservation }[] = []
  let replayedAll = true
  let expiresAt = Number.POSITIVE_INFINITY
  for (const index of counted) {
    const { engine, plan } = items[index]!
    let hold: Reservation
    try {
      hold = await engine.reserve(plan.id, plan.cost, {
        ...(request.sagaKey === undefined ? {} : { idempotencyKey: `${request.sagaKey}#${index}` }),
        ...(holdMs === undefined ? {} : { holdMs }),
        ...(signal === undefined ? {} : { signal }),
        ...(plan.ctx.data === undefined ? {} : { data: plan.ctx.data }),
      })
    } catch (error) {
      await engine.giveBack(held, error)
      return nothingHeld(storeFault(request, error))
    }
    results[index] = hold.result
    if (!hold.result.allowed) {
      await engine.giveBack(held, undefined)
      // Nothing stays held: every other item reports "not granted" at its usage now.
      await Promise.all(
        counted.map(async (i) => {
          if (i !== index) results[i] = await notGranted(items[i]!, i < index ? 'rolled-back' : 'not-tried')
        }),
      )
      const reason = hold.result.reason === 'floor' ? 'floor' : hold.result.reason === 'store' ? 'store' : 'limit'
      return nothingHeld({ allowed: false, results, refused: { index, quota: engine.name, reason } })
    }
    replayedAll &&= hold.result.status === 'replayed'
    if (hold.expiresAt !== undefined) expiresAt = Math.min(expiresAt, hold.expiresAt)
    held.push({ engine, id: plan.id, hold })
  }
  const result: ConsumeAllResult = replayedAll ? { allowed: true, results, replayed: true } : { allowed: true, results }
  return handle(result, Number.isFinite(expiresAt) ? expiresAt : undefined, held.length === 0, async (commit) => {
    if (commit) {
      for (const { engine, id, hold } of held) await engine.keep(id, hold)
    } else {
      await held[0]!.engine.giveBack(held, undefined)
    }
  })
}

/** The result of an item that is not granted because another item was refused. */
async function notGranted({ engine, plan }: Item, reason: 'rolled-back' | 'not-tried'): Promise<QuotaResult> {
  let snapshot: Awaited<ReturnType<typeof engine.store.get>>
  try {
    snapshot = await engine.store.get(plan.key)
  } catch {
    // Only the reported usage is lost: the refusal and the rollback stand either way.
    snapshot = undefined
  }
  return asRefused(engine.toResult(plan, { ok: false, index: 0, reason: 'limit', values: [snapshot?.value], ttlMs: [snapshot?.ttlMs] }, 0), reason)
}

// ------------------------------------------------------------------ handles and faults

/** A multi-quota handle; the first commit or release decides, later calls answer the same. */
function handle(result: ConsumeAllResult, expiresAt: number | undefined, empty: boolean, settle: (commit: boolean) => Promise<void>): ReservationAll {
  if (empty) return nothingHeld(result)
  let settled: Promise<ConsumeAllResult> | undefined
  const once = (commit: boolean) => {
    settled ??= settle(commit).then(() => result)
    return settled
  }
  return { ...result, expiresAt, commit: () => once(true), release: () => once(false) }
}

/** The plain result of a handle. */
function resultOf(held: ReservationAll): ConsumeAllResult {
  const { allowed, results, refused, replayed } = held
  return { allowed, results, ...(refused ? { refused } : {}), ...(replayed ? { replayed } : {}) }
}

function nothingHeld(result: ConsumeAllResult): ReservationAll {
  return { ...result, expiresAt: undefined, commit: async () => result, release: async () => result }
}

/**
 * A store fault after nothing stays held: reject, or answer per `onStoreError` when every
 * counted quota agrees on 'allow' or one says 'deny'.
 */
function storeFault(request: Request, error: unknown): ConsumeAllResult {
  if (!StoreError.isInstance(error)) throw error
  const { items, counted, results } = request
  const policies = counted.map((i) => items[i]!.engine.config.onStoreError)
  if (policies.includes('throw')) throw error
  const index = policies.indexOf('deny')
  for (const i of counted) results[i] = items[i]!.engine.onStoreFault(items[i]!.plan, error)!
  if (index === -1) return { allowed: true, results }
  const refusedIndex = counted[index]!
  for (const i of counted) results[i] = refusedResult('store', 0, results[i]!.limit)
  return { allowed: false, results, refused: { index: refusedIndex, quota: items[refusedIndex]!.engine.name, reason: 'store' } }
}
