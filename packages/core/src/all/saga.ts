import { giveBack, type HeldItem, keepHold } from '../holds.js'
import { asRefused } from '../result.js'
import type { ConsumeAllResult, QuotaResult, Reservation, ReservationAll } from '../types.js'
import { handle, type Item, nothingHeld, type Request, storeFault } from './request.js'

/**
 * The path of a multi-quota call that one atomic apply cannot cover: reserve the counted items
 * one by one, in order; on a refusal or a fault, release what was held. Each step keeps its
 * own record in its own counter's group (never cross-slot).
 */
export async function saga(
  request: Request,
  signal: AbortSignal | undefined,
  holdMs: number | undefined,
): Promise<ReservationAll> {
  const { items, counted, results } = request
  const held: HeldItem[] = []
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
      await giveBack(held, error)
      return nothingHeld(storeFault(request, error))
    }
    results[index] = hold.result
    if (!hold.result.allowed) return nothingHeld(await refusedAt(request, index, held))
    replayedAll &&= hold.result.status === 'replayed'
    if (hold.expiresAt !== undefined) expiresAt = Math.min(expiresAt, hold.expiresAt)
    held.push({ engine, id: plan.id, hold })
  }
  const result: ConsumeAllResult = replayedAll ? { allowed: true, results, replayed: true } : { allowed: true, results }
  return handle(result, Number.isFinite(expiresAt) ? expiresAt : undefined, held.length === 0, async (commit) => {
    if (commit) {
      for (const item of held) await keepHold(item)
    } else {
      await giveBack(held, undefined)
    }
  })
}

/** Item `index` was refused: give back what was held, and say what became of every other item. */
async function refusedAt(request: Request, index: number, held: readonly HeldItem[]): Promise<ConsumeAllResult> {
  const { items, counted, results } = request
  await giveBack(held, undefined)
  // Nothing stays held: every other item reports "not granted" at its usage now.
  await Promise.all(
    counted.map(async (i) => {
      if (i !== index) results[i] = await notGranted(items[i]!, i < index ? 'rolled-back' : 'not-tried')
    }),
  )
  const refused = results[index]!
  const reason = refused.reason === 'floor' ? 'floor' : refused.reason === 'store' ? 'store' : 'limit'
  return { allowed: false, results, refused: { index, quota: items[index]!.engine.name, reason } }
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
  return asRefused(
    engine.toResult(
      plan,
      { ok: false, index: 0, reason: 'limit', values: [snapshot?.value], ttlMs: [snapshot?.ttlMs] },
      0,
    ),
    reason,
  )
}
