/**
 * A pure, in-memory model of the quota guarantees (DESIGN.md, "Rules every path keeps" and
 * "Precise semantics"), used by the property suite to predict every result step by step.
 *
 * It is deliberately written from the guarantees, not from the engine: counters are keyed by
 * the structured identity (quota, id, period window), never by the engine's encoded store keys,
 * so a key collision in the engine shows up as a disagreement with the model.
 */

/** Fixed windows the model knows (the suite uses these three). */
export type ModelPeriod = 'minute' | 'hour' | 'day'

const PERIOD_MS: Record<ModelPeriod, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 }

/** What the model needs to know about one quota. Everything is a pure function of the id. */
export interface ModelQuotaSpec {
  name: string
  /** null: the id has no quota. */
  limit(id: string): number | null
  ttlMs?: number
  period?: ModelPeriod
  /** The system of record (static during a run). */
  loadUsage?: (id: string) => number
  idempotencyTtlMs: number
}

/** The result shape the model predicts (the engine's `QuotaResult`). */
export interface ModelResult {
  status: 'granted' | 'replayed' | 'unlimited' | 'refused'
  allowed: boolean
  usage: number
  limit: number
  remaining: number
  resetAt?: number
  reason?: 'limit' | 'floor' | 'rolled-back' | 'not-tried'
}

export interface ModelState {
  usage: number
  limit: number
  remaining: number
  resetAt?: number
  unlimited?: true
}

/** Hook calls a step is expected to make, as `hook:id:cost:allowed`. */
export type ModelEvent = string

export interface ModelConsumeAllItem {
  spec: ModelQuotaSpec
  id: string
  cost: number
}

export interface ModelConsumeAllResult {
  allowed: boolean
  results: ModelResult[]
  refused?: { index: number; quota: string; reason: 'limit' | 'floor' }
  replayed?: true
}

interface Counter {
  value: number
  expiresAt: number | undefined
  /** Holds of this counter by id; they live as long as it does. */
  holds: Map<string, ModelHoldEntry>
}

interface ModelHoldEntry {
  units: number
  expiresAt: number
  holdMs: number
}

/** What a `reserve` made, as the model tracks it for its handle. */
export interface ModelHold {
  spec: ModelQuotaSpec
  id: string
  counter: string
  holdId: string
  /** The reserve's answer (settling a hold that holds nothing answers it again). */
  result: ModelResult
  /** Units held: 0 when nothing is (refused, unlimited, cost 0). */
  units: number
  limit: number
  /** The reserve's idempotency record, which a release clears (a retry is then evaluated afresh). */
  record: string | undefined
  /** The first settle's outcome: settling again answers it. */
  settled?: ModelResult | 'expired'
}

interface IdempotencyRecord {
  results: ModelResult[]
  expiresAt: number
  /** The counter the recorded call charged (a replay's hold is settled there, whatever the window now). */
  counter?: string
  /**
   * Per result: whether its counter existed after the recorded call. A store records a counter's
   * lifetime only then; without one, a replay of a periodic quota reports the current window's end.
   */
  lived: boolean[]
}

const UNLIMITED: ModelResult = { status: 'unlimited', allowed: true, usage: 0, limit: Infinity, remaining: Infinity }

/** The quota's default `holdMs`, which `transact` holds for. */
const TRANSACT_HOLD_MS = 60_000

/** Start of the window containing `now` (UTC; minute, hour and day windows are epoch-aligned). */
export function windowStartAt(period: ModelPeriod, now: number): number {
  return Math.floor(now / PERIOD_MS[period]) * PERIOD_MS[period]
}

/**
 * The model. Every operation takes `now` (the clock both engine and store read during the step)
 * and returns what the engine must answer, updating the model's counters and idempotency records.
 */
export class QuotaModel {
  private readonly counters = new Map<string, Counter>()
  private readonly records = new Map<string, IdempotencyRecord>()
  /** Settled holds, by counter and hold id: settling again replays until the hold's length has passed. */
  private readonly settledMarks = new Map<string, number>()
  private holdSeq = 0
  /** Hook calls of the last operation. */
  events: ModelEvent[] = []

  // ------------------------------------------------------------------ identities

  /** Identity of the counter an id uses now (its period window included). */
  counterId(spec: ModelQuotaSpec, id: string, now: number): string {
    return JSON.stringify([spec.name, id, spec.period ? windowStartAt(spec.period, now) : null])
  }

  /** Identity of an id's group: where its idempotency records live, whatever the window. */
  groupId(spec: ModelQuotaSpec, id: string): string {
    return JSON.stringify([spec.name, id])
  }

  /**
   * Identity of an idempotency record: it belongs to the (quota, id) group, not to one window's
   * counter, so a retry after a window change or a TTL end replays; the key names it together
   * with the request, so a key reused for a different request (another cost, other items) is
   * evaluated afresh.
   */
  private recordId(group: string, operation: 'consume' | 'refund' | 'reserve' | 'all', key: string, request: unknown): string {
    return JSON.stringify([group, operation, key, request])
  }

  /** End of the id's current window, for periodic quotas. */
  private periodEndAt(spec: ModelQuotaSpec, now: number): number | undefined {
    return spec.period ? windowStartAt(spec.period, now) + PERIOD_MS[spec.period] : undefined
  }

  /** Lifetime a counter created now gets: the rest of the window, or `ttlMs`. */
  private lifetime(spec: ModelQuotaSpec, now: number): number | undefined {
    const endAt = this.periodEndAt(spec, now)
    return endAt === undefined ? spec.ttlMs : endAt - now
  }

  private live(counter: string, now: number): Counter | undefined {
    const c = this.counters.get(counter)
    if (c && c.expiresAt !== undefined && c.expiresAt <= now) {
      this.counters.delete(counter)
      return undefined
    }
    return c
  }

  /** A recorded result as a replay reports it now (see `IdempotencyRecord.lived`). */
  private replayOf(spec: ModelQuotaSpec, record: IdempotencyRecord, k: number, now: number): ModelResult {
    const result: ModelResult = { ...record.results[k]!, status: 'replayed' }
    if (!record.lived[k] && spec.period) result.resetAt = this.periodEndAt(spec, now)!
    return result
  }

  private liveRecord(record: string, now: number): IdempotencyRecord | undefined {
    const r = this.records.get(record)
    if (r && r.expiresAt <= now) {
      this.records.delete(record)
      return undefined
    }
    return r
  }

  private create(spec: ModelQuotaSpec, counter: string, value: number, now: number): Counter {
    const ttl = this.lifetime(spec, now)
    const c: Counter = { value, expiresAt: ttl === undefined ? undefined : now + ttl, holds: new Map() }
    this.counters.set(counter, c)
    return c
  }

  /** Give back the counter's expired holds (as the store does before a refusal or a read). */
  private reclaim(c: Counter | undefined, now: number): void {
    if (!c) return
    for (const [holdId, hold] of c.holds) {
      if (hold.expiresAt > now) continue
      c.value = Math.max(c.value - hold.units, 0)
      c.holds.delete(holdId)
    }
  }

  /** A missing counter of a quota with loadUsage is loaded (seeded) before it is used. */
  private loaded(spec: ModelQuotaSpec, id: string, counter: string, now: number): Counter | undefined {
    const c = this.live(counter, now)
    if (c || !spec.loadUsage) return c
    const usage = spec.loadUsage(id)
    this.events.push(`onLoad:${id}:${usage}`)
    return this.create(spec, counter, usage, now)
  }

  private resetAt(spec: ModelQuotaSpec, c: Counter | undefined, now: number): number | undefined {
    return this.periodEndAt(spec, now) ?? c?.expiresAt
  }

  private result(spec: ModelQuotaSpec, limit: number, c: Counter | undefined, now: number, allowed: boolean): ModelResult {
    const usage = c?.value ?? 0
    const r: ModelResult = { status: allowed ? 'granted' : 'refused', allowed, usage, limit, remaining: Math.max(limit - usage, 0) }
    const resetAt = this.resetAt(spec, c, now)
    if (resetAt !== undefined) r.resetAt = resetAt
    return r
  }

  // ------------------------------------------------------------------ operations

  consume(spec: ModelQuotaSpec, id: string, cost: number, key: string | undefined, now: number): ModelResult {
    this.events = []
    const result = this.consumeQuiet(spec, id, cost, key, now)
    this.events.push(`${result.allowed ? 'onConsume' : 'onExceeded'}:${id}:${cost}:${result.allowed}`)
    return result
  }

  private consumeQuiet(
    spec: ModelQuotaSpec,
    id: string,
    cost: number,
    key: string | undefined,
    now: number,
    operation: 'consume' | 'reserve' | 'all' = 'consume',
    hold?: { id: string; holdMs: number },
  ): ModelResult {
    const limit = spec.limit(id)
    if (limit === null) return { ...UNLIMITED }
    const counter = this.counterId(spec, id, now)
    const record = key === undefined ? undefined : this.recordId(this.groupId(spec, id), operation, key, cost)
    const replay = record && this.liveRecord(record, now)
    if (replay) return this.replayOf(spec, replay, 0, now)
    let c = this.loaded(spec, id, counter, now)
    // Expired holds come back before a refusal: the call is then checked again.
    if (cost > 0 && (c?.value ?? 0) + cost > limit) this.reclaim(c, now)
    const current = c?.value ?? 0
    if (cost > 0 && current + cost > limit) return { ...this.result(spec, limit, c, now, false), reason: 'limit' }
    if (cost > 0) {
      c ??= this.create(spec, counter, 0, now)
      c.value += cost
      if (hold) c.holds.set(hold.id, { units: cost, expiresAt: now + hold.holdMs, holdMs: hold.holdMs })
    }
    const result = this.result(spec, limit, c, now, true)
    if (record) this.records.set(record, { results: [result], expiresAt: now + spec.idempotencyTtlMs, counter, lived: [c !== undefined] })
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
          if (record) this.records.set(record, { results: [result], expiresAt: now + spec.idempotencyTtlMs, lived: [true] })
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
  reserve(spec: ModelQuotaSpec, id: string, cost: number, key: string | undefined, holdMs: number, now: number): ModelHold {
    this.events = []
    const group = this.groupId(spec, id)
    const holdId = key === undefined ? `hold-${++this.holdSeq}` : JSON.stringify([group, key, cost])
    const result = this.consumeQuiet(spec, id, cost, key, now, 'reserve', { id: holdId, holdMs })
    this.events.push(`${result.allowed ? 'onConsume' : 'onExceeded'}:${id}:${cost}:${result.allowed}`)
    const holds = (result.status === 'granted' || result.status === 'replayed') && cost > 0
    const record = key === undefined ? undefined : this.recordId(group, 'reserve', key, cost)
    // A replay's hold is on the counter the recorded call charged, perhaps an earlier window's.
    const counter = (result.status === 'replayed' && record !== undefined ? this.records.get(record)?.counter : undefined) ?? this.counterId(spec, id, now)
    return { spec, id, counter, holdId, result, units: holds ? cost : 0, limit: result.limit, record }
  }

  /** Settle a reservation (its handle's commit, or release): the first settle decides. */
  settle(hold: ModelHold, keep: number, now: number, release = false): ModelResult | 'expired' {
    this.events = []
    if (hold.settled !== undefined) return hold.settled
    hold.settled = this.settleOnce(hold, keep, now)
    if (release && hold.units > 0 && hold.record !== undefined && hold.settled !== 'expired' && hold.settled.status === 'granted') {
      this.records.delete(hold.record)
    }
    return hold.settled
  }

  private settleOnce(hold: ModelHold, keep: number, now: number): ModelResult | 'expired' {
    if (hold.units === 0) return hold.result
    const c = this.live(hold.counter, now)
    const entry = c?.holds.get(hold.holdId)
    const mark = `${hold.counter}#${hold.holdId}`
    if (!c || !entry || entry.expiresAt <= now) {
      const marked = this.settledMarks.get(mark)
      if (c && !entry && marked !== undefined && marked > now) return { ...this.result(hold.spec, hold.limit, c, now, true), status: 'replayed' }
      this.reclaim(c, now)
      return 'expired'
    }
    c.value = Math.max(c.value - (entry.units - Math.min(keep, entry.units)), 0)
    c.holds.delete(hold.holdId)
    this.settledMarks.set(mark, now + entry.holdMs)
    // A release (nothing kept) gives held units back unused: told to onCompensate.
    if (keep === 0) this.events.push(`onCompensate:${hold.id}:${entry.units}`)
    return this.result(hold.spec, hold.limit, c, now, true)
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

  /**
   * `consumeAll`, all or nothing. `atomic` says which path the engine takes for these items (one
   * atomic apply, or a saga of single consumes with compensation); the guarantees are the same,
   * but idempotency records live per call on the atomic path and per step on the saga.
   */
  consumeAll(items: readonly ModelConsumeAllItem[], key: string | undefined, atomic: boolean, now: number): ModelConsumeAllResult {
    this.events = []
    const limits = items.map((item) => item.spec.limit(item.id))
    const counted = items.flatMap((_, i) => (limits[i] === null ? [] : [i]))
    const results: ModelResult[] = items.map(() => ({ ...UNLIMITED }))
    if (counted.length === 0) return { allowed: true, results }
    return atomic
      ? this.consumeAllAtomic(items, limits, counted, results, key, now)
      : this.consumeAllSaga(
          items,
          limits,
          counted,
          results,
          // Every step's record is named by the whole request, as the atomic path's one record is.
          key === undefined ? undefined : `${key}#${JSON.stringify(this.requestOf(items, counted, now))}`,
          now,
        )
  }

  /** What a multi-quota request charges: each counted item's (quota, id) group and cost, whatever the window. */
  private requestOf(items: readonly ModelConsumeAllItem[], counted: number[], _now: number): Array<[string, number]> {
    return counted.map((i) => [this.groupId(items[i]!.spec, items[i]!.id), items[i]!.cost])
  }

  private consumeAllAtomic(
    items: readonly ModelConsumeAllItem[],
    limits: (number | null)[],
    counted: number[],
    results: ModelResult[],
    key: string | undefined,
    now: number,
  ): ModelConsumeAllResult {
    const first = items[counted[0]!]!
    const request = this.requestOf(items, counted, now)
    const record = key === undefined ? undefined : this.recordId(this.groupId(first.spec, first.id), 'all', key, request)
    const replay = record && this.liveRecord(record, now)
    if (replay) {
      counted.forEach((i, k) => {
        results[i] = this.replayOf(items[i]!.spec, replay, k, now)
      })
      return { allowed: true, results, replayed: true }
    }
    // The engine's rounds: each apply checks the items whose counters are present (several
    // items on one counter see each other; a refusal writes nothing). An item over its limit
    // refuses the call without any load; otherwise the first counter still to load is loaded
    // and the apply runs again.
    let scratch: Map<string, number>
    for (;;) {
      scratch = new Map<string, number>()
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
          for (const j of counted) {
            const other = items[j]!
            const oc = this.live(this.counterId(other.spec, other.id, now), now)
            results[j] = { ...this.result(other.spec, limits[j]!, oc, now, false), reason: j < i ? 'rolled-back' : 'not-tried' }
          }
          results[i] = { ...results[i]!, reason: 'limit' }
          return { allowed: false, results, refused: { index: i, quota: spec.name, reason: 'limit' } }
        }
        scratch.set(counter, current + cost)
      }
      if (toLoad === undefined) break
      const { spec, id } = items[toLoad]!
      this.loaded(spec, id, this.counterId(spec, id, now), now)
    }
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
      const c = this.live(counter, now)
      results[i] = this.result(spec, limits[i]!, c ?? { value: scratch.get(counter)!, expiresAt: undefined, holds: new Map() }, now, true)
    }
    if (record) {
      const lived = counted.map((i) => this.live(this.counterId(items[i]!.spec, items[i]!.id, now), now) !== undefined)
      this.records.set(record, { results: counted.map((i) => results[i]!), expiresAt: now + first.spec.idempotencyTtlMs, lived })
    }
    return { allowed: true, results }
  }

  private consumeAllSaga(
    items: readonly ModelConsumeAllItem[],
    limits: (number | null)[],
    counted: number[],
    results: ModelResult[],
    key: string | undefined,
    now: number,
  ): ModelConsumeAllResult {
    const granted: number[] = []
    let replayedAll = true
    for (const i of counted) {
      const { spec, id, cost } = items[i]!
      // Each step keeps its own idempotency record, next to its own counter.
      const step = this.consumeQuiet(spec, id, cost, key === undefined ? undefined : `${key}#${i}`, now, 'all')
      results[i] = step
      if (!step.allowed) {
        // Give back what this call granted, newest first. A replayed step's units belong to
        // the earlier call that was granted them, so they are not given back.
        for (const g of [...granted].reverse()) {
          const item = items[g]!
          if (results[g]!.status === 'replayed') continue
          const counter = this.counterId(item.spec, item.id, now)
          const c = this.live(counter, now)
          if (!c) continue
          c.value -= item.cost
          if (key !== undefined) this.records.delete(this.recordId(this.groupId(item.spec, item.id), 'all', `${key}#${g}`, item.cost))
        }
        // Nothing stays granted: every item reports its usage after the call and what became of it.
        for (const j of counted) {
          if (j === i) continue
          const other = items[j]!
          const oc = this.live(this.counterId(other.spec, other.id, now), now)
          results[j] = { ...this.result(other.spec, limits[j]!, oc, now, false), reason: j < i ? 'rolled-back' : 'not-tried' }
        }
        return { allowed: false, results, refused: { index: i, quota: spec.name, reason: step.reason === 'floor' ? 'floor' : 'limit' } }
      }
      replayedAll &&= step.status === 'replayed'
      granted.push(i)
    }
    return replayedAll ? { allowed: true, results, replayed: true } : { allowed: true, results }
  }

  /** Usage the model holds for an id right now (no load), for invariant checks. */
  peek(spec: ModelQuotaSpec, id: string, now: number): number | undefined {
    return this.live(this.counterId(spec, id, now), now)?.value
  }
}
