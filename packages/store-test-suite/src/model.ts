/**
 * A pure, in-memory model of the quota guarantees (DESIGN.md, "Rules every path keeps" and
 * "Precise semantics"), used by the property suite to predict every result step by step.
 *
 * It is deliberately written from the guarantees, not from the engine: counters are keyed by
 * the structured identity (quota, id, period window), never by the engine's encoded store keys,
 * so a key collision in the engine shows up as a disagreement with the model.
 */
import { ConsumeAllModel } from './model/consume-all.js'
import {
  type ModelHold,
  type ModelQuotaSpec,
  type ModelResult,
  type ModelState,
  TRANSACT_HOLD_MS,
  UNLIMITED,
} from './model/types.js'

export type {
  ModelConsumeAllItem,
  ModelConsumeAllResult,
  ModelEvent,
  ModelHold,
  ModelPeriod,
  ModelQuotaSpec,
  ModelResult,
  ModelState,
} from './model/types.js'
export { windowStartAt } from './model/types.js'

/**
 * The model. Every operation takes `now` (the clock both engine and store read during the step)
 * and returns what the engine must answer, updating the model's counters and idempotency records.
 * Its state and shared steps are in `model/model-base.ts`, `consumeAll` in `model/consume-all.ts`.
 */
export class QuotaModel extends ConsumeAllModel {
  // ------------------------------------------------------------------ operations

  consume(spec: ModelQuotaSpec, id: string, cost: number, key: string | undefined, now: number): ModelResult {
    this.events = []
    const result = this.consumeQuiet(spec, id, cost, key, now)
    this.events.push(`${result.allowed ? 'onConsume' : 'onExceeded'}:${id}:${cost}:${result.allowed}`)
    return result
  }

  refund(spec: ModelQuotaSpec, id: string, cost: number, key: string | undefined, now: number): ModelResult {
    this.events = []
    const limit = spec.limit(id)
    let result: ModelResult
    if (limit === null) {
      result = { ...UNLIMITED }
    } else {
      const counter = this.counterId(spec, id, now)
      const record = key === undefined ? undefined : this.recordId(this.groupId(spec, id), 'refund', key, cost)
      const replay = record && this.liveRecord(record, now)
      if (replay) {
        result = this.replayOf(spec, replay, 0, now)
      } else {
        // A refund never loads nor creates a counter, and is refused whole rather than clamped.
        const c = this.live(counter, now)
        if (!c || c.value - cost < 0) {
          result = { ...this.result(spec, limit, c, now, false), reason: 'floor' }
        } else {
          c.value -= cost
          result = this.result(spec, limit, c, now, true)
          if (record)
            this.records.set(record, { results: [result], expiresAt: now + spec.idempotencyTtlMs, lived: [true] })
        }
      }
    }
    this.events.push(`${result.allowed ? 'onRefund' : 'onExceeded'}:${id}:${cost}:${result.allowed}`)
    return result
  }

  get(spec: ModelQuotaSpec, id: string, now: number): ModelState {
    this.events = []
    const limit = spec.limit(id)
    if (limit === null) return { usage: 0, limit: Infinity, remaining: Infinity, unlimited: true }
    const c = this.loaded(spec, id, this.counterId(spec, id, now), now)
    // A read gives back expired holds first.
    this.reclaim(c, now)
    const { allowed: _allowed, status: _status, ...state } = this.result(spec, limit, c, now, true)
    return state
  }

  /** Overwrite the usage; a live counter keeps its lifetime, a new one gets the quota's. */
  set(spec: ModelQuotaSpec, id: string, usage: number, now: number): void {
    this.events = []
    const counter = this.counterId(spec, id, now)
    const c = this.live(counter, now)
    if (c) c.value = usage
    else this.create(spec, counter, usage, now)
  }

  reset(spec: ModelQuotaSpec, id: string, now: number): void {
    this.events = []
    this.counters.delete(this.counterId(spec, id, now))
  }

  /**
   * `reserve`: a consume whose units are held under a hold of their own (recorded apart from
   * consumes); a replay answers with a handle on the hold the recorded call made.
   */
  reserve(
    spec: ModelQuotaSpec,
    id: string,
    cost: number,
    key: string | undefined,
    holdMs: number,
    now: number,
  ): ModelHold {
    this.events = []
    const group = this.groupId(spec, id)
    const holdId = key === undefined ? `hold-${++this.holdSeq}` : JSON.stringify([group, key, cost])
    const result = this.consumeQuiet(spec, id, cost, key, now, 'reserve', { id: holdId, holdMs })
    this.events.push(`${result.allowed ? 'onConsume' : 'onExceeded'}:${id}:${cost}:${result.allowed}`)
    const holds = (result.status === 'granted' || result.status === 'replayed') && cost > 0
    const record = key === undefined ? undefined : this.recordId(group, 'reserve', key, cost)
    // A replay's hold is on the counter the recorded call charged, perhaps an earlier window's.
    const counter =
      (result.status === 'replayed' && record !== undefined ? this.records.get(record)?.counter : undefined) ??
      this.counterId(spec, id, now)
    return { spec, id, counter, holdId, result, units: holds ? cost : 0, limit: result.limit, record }
  }

  /** Settle a reservation (its handle's commit, or release): the first settle decides. */
  settle(hold: ModelHold, keep: number, now: number, release = false): ModelResult | 'expired' {
    this.events = []
    if (hold.settled !== undefined) return hold.settled
    hold.settled = this.settleOnce(hold, keep, now)
    if (
      release &&
      hold.units > 0 &&
      hold.record !== undefined &&
      hold.settled !== 'expired' &&
      hold.settled.status === 'granted'
    ) {
      this.records.delete(hold.record)
    }
    return hold.settled
  }

  /**
   * `transact`: consume; when refused it throws (returned as `exceeded`); when `fails`, the units
   * are given back (and the idempotency record cleared) unless the call was a replay, unlimited,
   * cost 0, or `irreversible`.
   */
  transact(
    spec: ModelQuotaSpec,
    id: string,
    cost: number,
    fails: boolean,
    irreversible: boolean,
    key: string | undefined,
    now: number,
  ): { exceeded: boolean; result: ModelResult } {
    // transact is a reserve (recorded apart from consumes) whose hold `fn` settles in the same
    // step: committed, or released (its record cleared) when `fn` fails and the work can be undone.
    const hold = this.reserve(spec, id, cost, key, TRANSACT_HOLD_MS, now)
    const { result } = hold
    if (!result.allowed) return { exceeded: true, result }
    if (fails && !irreversible) {
      if (result.status === 'granted' && cost > 0) {
        hold.settled = this.settleOnce(hold, 0, now)
        if (hold.record !== undefined) this.records.delete(hold.record)
      }
    } else {
      hold.settled = this.settleOnce(hold, cost, now)
    }
    return { exceeded: false, result }
  }

  /** Usage the model holds for an id right now (no load), for invariant checks. */
  peek(spec: ModelQuotaSpec, id: string, now: number): number | undefined {
    return this.live(this.counterId(spec, id, now), now)?.value
  }
}
