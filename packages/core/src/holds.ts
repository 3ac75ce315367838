import { createHash, randomUUID } from 'node:crypto'
import { CompensationError, HoldExpiredError } from './errors.js'
import type { QuotaEngine } from './quota.js'
import type { HoldLapse } from './reservation.js'
import type { Reservation } from './types.js'

/** A hold made by one engine for one id, as the give-back and keep steps see it. */
export interface HeldItem {
  engine: QuotaEngine<any>
  id: string
  hold: Reservation
}

/**
 * The id of a hold. A reserve with an idempotency key gets one derived from its record, so a
 * retried reserve that replays answers with a handle on the same hold.
 */
export function holdIdOf(recordKey: string | undefined): string {
  return recordKey === undefined
    ? randomUUID()
    : createHash('sha256').update(recordKey).digest('base64url').slice(0, 22)
}

/**
 * Give the holds of a failed unit of work back (each release tells `onCompensate`). A hold
 * that expired meanwhile is back already; a replayed one is the earlier call's and stays. Throws
 * `CompensationError` when a release failed.
 */
export async function giveBack(holds: readonly HeldItem[], cause: unknown): Promise<void> {
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
export async function keepHold({ engine, id, hold }: HeldItem): Promise<void> {
  const { status } = hold.result
  if (status !== 'granted' && status !== 'replayed') return
  try {
    await hold.commit()
  } catch (error) {
    if (!HoldExpiredError.isInstance(error)) throw error
    // A replay's hold was the earlier call's, settled or lapsed long ago: not ours to charge.
    if (status === 'replayed') return
    if (await chargeAgainAfter(engine, error.lapse, id, hold.cost)) return
    throw error
  }
}

/** After a hold lapsed: charge its units again where that is right (see `keepHold`); false when refused. */
export async function chargeAgainAfter(
  engine: QuotaEngine<any>,
  lapse: HoldLapse,
  id: string,
  cost: number,
): Promise<boolean> {
  if (lapse !== 'expired' || engine.config.loadUsage) return true
  return (await engine.consume(id, cost)).allowed
}
