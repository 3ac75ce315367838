import {
  type Counter,
  type IdempotencyRecord,
  type ModelEvent,
  type ModelHold,
  type ModelQuotaSpec,
  type ModelResult,
  PERIOD_MS,
  UNLIMITED,
  windowStartAt,
} from './types.js'

/**
 * The model's state (counters, idempotency records, settled marks) and the steps every operation
 * is built from: identities, lifetimes, loads, reclaiming expired holds, one consume, one settle.
 */
export class ModelBase {
  protected readonly counters = new Map<string, Counter>()
  protected readonly records = new Map<string, IdempotencyRecord>()
  /** Settled holds, by counter and hold id: settling again replays until the hold's length has passed. */
  protected readonly settledMarks = new Map<string, number>()
  protected holdSeq = 0
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
  protected recordId(
    group: string,
    operation: 'consume' | 'refund' | 'reserve' | 'all',
    key: string,
    request: unknown,
  ): string {
    return JSON.stringify([group, operation, key, request])
  }

  /** End of the id's current window, for periodic quotas. */
  protected periodEndAt(spec: ModelQuotaSpec, now: number): number | undefined {
    return spec.period ? windowStartAt(spec.period, now) + PERIOD_MS[spec.period] : undefined
  }

  /** Lifetime a counter created now gets: the rest of the window, or `ttlMs`. */
  protected lifetime(spec: ModelQuotaSpec, now: number): number | undefined {
    const endAt = this.periodEndAt(spec, now)
    return endAt === undefined ? spec.ttlMs : endAt - now
  }

  protected live(counter: string, now: number): Counter | undefined {
    const c = this.counters.get(counter)
    if (c && c.expiresAt !== undefined && c.expiresAt <= now) {
      this.counters.delete(counter)
      return undefined
    }
    return c
  }

  /** A recorded result as a replay reports it now (see `IdempotencyRecord.lived`). */
  protected replayOf(spec: ModelQuotaSpec, record: IdempotencyRecord, k: number, now: number): ModelResult {
    const result: ModelResult = { ...record.results[k]!, status: 'replayed' }
    if (!record.lived[k] && spec.period) result.resetAt = this.periodEndAt(spec, now)!
    return result
  }

  protected liveRecord(record: string, now: number): IdempotencyRecord | undefined {
    const r = this.records.get(record)
    if (r && r.expiresAt <= now) {
      this.records.delete(record)
      return undefined
    }
    return r
  }

  protected create(spec: ModelQuotaSpec, counter: string, value: number, now: number): Counter {
    const ttl = this.lifetime(spec, now)
    const c: Counter = { value, expiresAt: ttl === undefined ? undefined : now + ttl, holds: new Map() }
    this.counters.set(counter, c)
    return c
  }

  /** Give back the counter's expired holds (as the store does before a refusal or a read). */
  protected reclaim(c: Counter | undefined, now: number): void {
    if (!c) return
    for (const [holdId, hold] of c.holds) {
      if (hold.expiresAt > now) continue
      c.value = Math.max(c.value - hold.units, 0)
      c.holds.delete(holdId)
    }
  }

  /** A missing counter of a quota with loadUsage is loaded (seeded) before it is used. */
  protected loaded(spec: ModelQuotaSpec, id: string, counter: string, now: number): Counter | undefined {
    const c = this.live(counter, now)
    if (c || !spec.loadUsage) return c
    const usage = spec.loadUsage(id)
    this.events.push(`onLoad:${id}:${usage}`)
    return this.create(spec, counter, usage, now)
  }

  protected resetAt(spec: ModelQuotaSpec, c: Counter | undefined, now: number): number | undefined {
    return this.periodEndAt(spec, now) ?? c?.expiresAt
  }

  protected result(
    spec: ModelQuotaSpec,
    limit: number,
    c: Counter | undefined,
    now: number,
    allowed: boolean,
  ): ModelResult {
    const usage = c?.value ?? 0
    const r: ModelResult = {
      status: allowed ? 'granted' : 'refused',
      allowed,
      usage,
      limit,
      remaining: Math.max(limit - usage, 0),
    }
    const resetAt = this.resetAt(spec, c, now)
    if (resetAt !== undefined) r.resetAt = resetAt
    return r
  }

  protected consumeQuiet(
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
    if (record)
      this.records.set(record, {
        results: [result],
        expiresAt: now + spec.idempotencyTtlMs,
        counter,
        lived: [c !== undefined],
      })
    return result
  }

  protected settleOnce(hold: ModelHold, keep: number, now: number): ModelResult | 'expired' {
    if (hold.units === 0) return hold.result
    const c = this.live(hold.counter, now)
    const entry = c?.holds.get(hold.holdId)
    const mark = `${hold.counter}#${hold.holdId}`
    if (!c || !entry || entry.expiresAt <= now) {
      const marked = this.settledMarks.get(mark)
      if (c && !entry && marked !== undefined && marked > now)
        return { ...this.result(hold.spec, hold.limit, c, now, true), status: 'replayed' }
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
}
