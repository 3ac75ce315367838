import { callHook } from '../async.js'
import { HoldExpiredError, StoreError } from '../errors.js'
import { chargeAgainAfter, holdIdOf } from '../holds.js'
import { settleOp } from '../reservation.js'
import { asRefused } from '../result.js'
import type { ApplyResult, CounterOp } from '../store/contract.js'
import type { ConsumeAllResult, QuotaResult, ReservationAll } from '../types.js'
import { handle, type Item, nothingHeld, type Request, storeFault } from './request.js'

/** The path of a multi-quota call whose counted items one store can apply together: one atomic apply. */

/** Consume every counted item in one apply. */
export async function atomically(request: Request, signal: AbortSignal | undefined): Promise<ConsumeAllResult> {
  const applied = await applyCounted(request, signal, undefined)
  if (!('ok' in applied)) return applied
  return applied.ok ? grantedAll(request, applied) : refusedAll(request, applied)
}

/** Hold every counted item in one apply; the handle settles them together. */
export async function atomicHolds(
  request: Request,
  signal: AbortSignal | undefined,
  holdMs: number | undefined,
): Promise<ReservationAll> {
  const first = request.items[request.counted[0]!]!
  const hold = { id: holdIdOf(request.recordKey), holdMs: holdMs ?? first.engine.config.holdMs }
  // Read before the store is touched: a clock that fails then fails the call with nothing held.
  const heldAt = first.engine.planner.now()
  const applied = await applyCounted(request, signal, hold)
  if (!('ok' in applied)) return nothingHeld(applied)
  if (!applied.ok) return nothingHeld(refusedAll(request, applied))
  const result = grantedAll(request, applied)
  const held = request.counted.map((i) => request.items[i]!).filter(({ plan }) => plan.cost > 0)
  return handle(result, heldAt + hold.holdMs, held.length === 0, (commit) =>
    settleTogether(held, hold.id, commit, commit ? undefined : request.recordKey),
  )
}

/**
 * Settle the holds of an atomic reserveAll in one apply. When that is refused because a hold
 * is gone (its counter expired, or the hold did), each is settled on its own instead, so one
 * lost hold never keeps the others' units: a release skips it (its units are back), a commit
 * charges its units again where that is right (see `keepHold`), or throws `HoldExpiredError`
 * when that is refused.
 */
async function settleTogether(
  held: Item[],
  holdId: string,
  commit: boolean,
  clearIdempotencyKey: string | undefined,
): Promise<void> {
  const { engine } = held[0]!
  const keep = (item: Item) => (commit ? item.plan.cost : 0)
  const answer = await engine.retrying(true, undefined, async () =>
    engine.store.apply(
      held.map((item) => settleOp(item.plan, holdId, keep(item))),
      clearIdempotencyKey === undefined ? {} : { clearIdempotencyKey },
    ),
  )
  if (answer.ok) {
    if (!commit) for (const [k, item] of held.entries()) compensated(item, item.engine.toResult(item.plan, answer, k))
    return
  }
  if (answer.reason !== 'hold')
    throw new StoreError(`settling the holds was refused (${answer.reason})`, { retryable: false })
  for (const [k, item] of held.entries()) {
    // settleHold tells onCompensate of a release itself.
    const verdict = await item.engine.settleHold(
      item.plan,
      holdId,
      keep(item),
      k === 0 ? clearIdempotencyKey : undefined,
    )
    if (typeof verdict !== 'string' || !commit) continue
    if (!(await chargeAgainAfter(item.engine, verdict, item.plan.id, item.plan.cost)))
      throw new HoldExpiredError(item.engine.name, item.plan.id, verdict)
  }
}

/** Tell `onCompensate` that the engine gave an item's units back on its own. */
function compensated({ engine, plan }: Item, result: QuotaResult): void {
  callHook(engine.config.hooks.onCompensate, {
    quota: engine.name,
    id: plan.id,
    cost: plan.cost,
    result,
    data: plan.ctx.data,
  })
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
        first.engine.applyOptions(request.recordKey, signal),
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
