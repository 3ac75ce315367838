import { ModelBase } from './model-base.js'
import {
  type Counter,
  type ModelConsumeAllItem,
  type ModelConsumeAllResult,
  type ModelResult,
  UNLIMITED,
} from './types.js'

/** One consumeAll call as the model works on it: its items, their limits, which are counted, and the results so far. */
interface AllCall {
  items: readonly ModelConsumeAllItem[]
  limits: (number | null)[]
  counted: number[]
  results: ModelResult[]
  now: number
}

/** `consumeAll` in the model, on the atomic path and on the saga. */
export class ConsumeAllModel extends ModelBase {
  /**
   * `consumeAll`, all or nothing. `atomic` says which path the engine takes for these items (one
   * atomic apply, or a saga of single consumes with compensation); the guarantees are the same,
   * but idempotency records live per call on the atomic path and per step on the saga.
   */
  consumeAll(
    items: readonly ModelConsumeAllItem[],
    key: string | undefined,
    atomic: boolean,
    now: number,
  ): ModelConsumeAllResult {
    this.events = []
    const limits = items.map((item) => item.spec.limit(item.id))
    const counted = items.flatMap((_, i) => (limits[i] === null ? [] : [i]))
    const results: ModelResult[] = items.map(() => ({ ...UNLIMITED }))
    if (counted.length === 0) return { allowed: true, results }
    const call: AllCall = { items, limits, counted, results, now }
    if (atomic) return this.consumeAllAtomic(call, key)
    // Every step's record is named by the whole request, as the atomic path's one record is.
    return this.consumeAllSaga(
      call,
      key === undefined ? undefined : `${key}#${JSON.stringify(this.requestOf(items, counted))}`,
    )
  }

  /** What a multi-quota request charges: each counted item's (quota, id) group and cost, whatever the window. */
  private requestOf(items: readonly ModelConsumeAllItem[], counted: number[]): Array<[string, number]> {
    return counted.map((i) => [this.groupId(items[i]!.spec, items[i]!.id), items[i]!.cost])
  }

  private consumeAllAtomic(call: AllCall, key: string | undefined): ModelConsumeAllResult {
    const { items, counted, results, now } = call
    const first = items[call.counted[0]!]!
    const record =
      key === undefined
        ? undefined
        : this.recordId(this.groupId(first.spec, first.id), 'all', key, this.requestOf(items, counted))
    const replay = record && this.liveRecord(record, now)
    if (replay) {
      counted.forEach((i, k) => {
        results[i] = this.replayOf(items[i]!.spec, replay, k, now)
      })
      return { allowed: true, results, replayed: true }
    }
    const scratch = this.atomicRounds(call)
    if (!(scratch instanceof Map)) return scratch
    for (const i of counted) {
      const { spec, id, cost } = items[i]!
      if (cost === 0) continue
      const counter = this.counterId(spec, id, now)
      const c = this.live(counter, now) ?? this.create(spec, counter, 0, now)
      c.value = scratch.get(counter)!
    }
    for (const i of counted) {
      const { spec, id } = items[i]!
      const counter = this.counterId(spec, id, now)
      const c: Counter = this.live(counter, now) ?? {
        value: scratch.get(counter)!,
        expiresAt: undefined,
        holds: new Map(),
      }
      results[i] = this.result(spec, call.limits[i]!, c, now, true)
    }
    if (record) {
      const lived = counted.map((i) => this.live(this.counterId(items[i]!.spec, items[i]!.id, now), now) !== undefined)
      this.records.set(record, {
        results: counted.map((i) => results[i]!),
        expiresAt: now + first.spec.idempotencyTtlMs,
        lived,
      })
    }
    return { allowed: true, results }
  }

  /**
   * The engine's rounds: each apply checks the items whose counters are present (several items
   * on one counter see each other; a refusal writes nothing). An item over its limit refuses the
   * call without any load; otherwise the first counter still to load is loaded and the apply runs
   * again. Returns each counter's value after the call, or the refusal.
   */
  private atomicRounds(call: AllCall): Map<string, number> | ModelConsumeAllResult {
    const { items, limits, counted, now } = call
    for (;;) {
      const scratch = new Map<string, number>()
      const unknown = new Set<string>()
      let toLoad: number | undefined
      for (const i of counted) {
        const { spec, id, cost } = items[i]!
        const counter = this.counterId(spec, id, now)
        if (unknown.has(counter)) continue
        const c = this.live(counter, now)
        if (!c && !scratch.has(counter) && spec.loadUsage) {
          toLoad ??= i
          unknown.add(counter)
          continue
        }
        // Expired holds come back before a refusal (items are on distinct counters here).
        if (cost > 0 && !scratch.has(counter) && (c?.value ?? 0) + cost > limits[i]!) this.reclaim(c, now)
        const current = scratch.get(counter) ?? c?.value ?? 0
        if (cost > 0 && current + cost > limits[i]!) {
          call.results[i] = { ...this.result(spec, limits[i]!, this.live(counter, now), now, false), reason: 'limit' }
          return this.refuseAll(call, i, 'limit')
        }
        scratch.set(counter, current + cost)
      }
      if (toLoad === undefined) return scratch
      const { spec, id } = items[toLoad]!
      this.loaded(spec, id, this.counterId(spec, id, now), now)
    }
  }

  /** Item `i` was refused: every other item reports its usage after the call, and whether it was rolled back or not tried. */
  private refuseAll(call: AllCall, i: number, reason: 'limit' | 'floor'): ModelConsumeAllResult {
    const { items, limits, counted, results, now } = call
    for (const j of counted) {
      if (j === i) continue
      const other = items[j]!
      const oc = this.live(this.counterId(other.spec, other.id, now), now)
      results[j] = {
        ...this.result(other.spec, limits[j]!, oc, now, false),
        reason: j < i ? 'rolled-back' : 'not-tried',
      }
    }
    return { allowed: false, results, refused: { index: i, quota: items[i]!.spec.name, reason } }
  }

  private consumeAllSaga(call: AllCall, key: string | undefined): ModelConsumeAllResult {
    const { items, counted, results, now } = call
    const granted: number[] = []
    let replayedAll = true
    for (const i of counted) {
      const { spec, id, cost } = items[i]!
      // Each step keeps its own idempotency record, next to its own counter.
      const step = this.consumeQuiet(spec, id, cost, key === undefined ? undefined : `${key}#${i}`, now, 'all')
      results[i] = step
      if (!step.allowed) {
        this.giveBack(call, granted, key)
        return this.refuseAll(call, i, step.reason === 'floor' ? 'floor' : 'limit')
      }
      replayedAll &&= step.status === 'replayed'
      granted.push(i)
    }
    return replayedAll ? { allowed: true, results, replayed: true } : { allowed: true, results }
  }

  /**
   * Give back what a refused saga granted, newest first. A replayed step's units belong to the
   * earlier call that was granted them, so they are not given back.
   */
  private giveBack(call: AllCall, granted: number[], key: string | undefined): void {
    const { items, results, now } = call
    for (const g of [...granted].reverse()) {
      const item = items[g]!
      if (results[g]!.status === 'replayed') continue
      const c = this.live(this.counterId(item.spec, item.id, now), now)
      if (!c) continue
      c.value -= item.cost
      if (key !== undefined)
        this.records.delete(this.recordId(this.groupId(item.spec, item.id), 'all', `${key}#${g}`, item.cost))
    }
  }
}
