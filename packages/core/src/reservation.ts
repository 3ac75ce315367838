import { HoldExpiredError, InvalidArgumentError } from './errors.js'
import type { Plan } from './plan.js'
import type { CounterOp } from './store/contract.js'
import type { QuotaResult, Reservation } from './types.js'

/**
 * Why a hold could not be settled: it expired on a live counter, or it went with a counter
 * that vanished (reset, expired, lost by the store).
 */
export type HoldLapse = 'expired' | 'counter-gone'

/** What a reservation needs of its quota's engine to settle its hold. */
export interface HoldSettler {
  readonly name: string
  /**
   * Settle hold `holdId` of the plan's counter, keeping `keep` units; retried while safe.
   * Resolves the store's verdict: the result, or why the hold was gone.
   */
  settleHold(
    plan: Plan<any>,
    holdId: string,
    keep: number,
    clearIdempotencyKey: string | undefined,
  ): Promise<QuotaResult | HoldLapse>
}

/** A reservation that holds nothing (refused, unlimited, degraded): settling it changes nothing. */
export function emptyReservation(result: QuotaResult): Reservation {
  return {
    result,
    cost: 0,
    expiresAt: undefined,
    commit: async () => result,
    release: async () => result,
  }
}

/**
 * The units a `reserve` holds on one counter until `commit` or `release`, or until the hold
 * expires and they come back by themselves. Settling is idempotent: the first `commit` or
 * `release` decides, and later calls answer the same.
 */
export class HeldReservation implements Reservation {
  private settled: Promise<QuotaResult> | undefined

  constructor(
    private readonly engine: HoldSettler,
    private readonly plan: Plan<any>,
    private readonly holdId: string,
    readonly result: QuotaResult,
    readonly expiresAt: number,
    /** The reserve's idempotency record: a release deletes it, so a retry is evaluated afresh. */
    private readonly recordKey: string | undefined,
  ) {}

  get cost(): number {
    return this.plan.cost
  }

  commit(cost?: number): Promise<QuotaResult> {
    if (
      cost !== undefined &&
      (typeof cost !== 'number' || !Number.isSafeInteger(cost) || cost < 0 || cost > this.plan.cost)
    ) {
      return Promise.reject(
        new InvalidArgumentError(
          'cost',
          `must be a safe integer in [0, ${this.plan.cost}] (the units held), got ${String(cost)}`,
        ),
      )
    }
    return this.settle(cost ?? this.plan.cost, undefined)
  }

  release(): Promise<QuotaResult> {
    return this.settle(0, this.recordKey)
  }

  private settle(keep: number, clearIdempotencyKey: string | undefined): Promise<QuotaResult> {
    this.settled ??= this.engine.settleHold(this.plan, this.holdId, keep, clearIdempotencyKey).then((verdict) => {
      if (typeof verdict === 'string') throw new HoldExpiredError(this.engine.name, this.plan.id, verdict)
      return verdict
    })
    return this.settled
  }
}

/** The store op that settles hold `holdId` of a plan's counter. */
export function settleOp(plan: Plan<any>, holdId: string, keep: number): CounterOp {
  // 'create' never creates with delta 0: a counter that vanished has no holds, and is refused with 'hold'.
  return { key: plan.key, delta: 0, ifMissing: 'create', settle: { id: holdId, keep } }
}
