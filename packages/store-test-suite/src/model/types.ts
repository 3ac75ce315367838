/** Shapes and constants of the property suite's model (see `../model.ts`). */

/** Fixed windows the model knows (the suite uses these three). */
export type ModelPeriod = 'minute' | 'hour' | 'day'

export const PERIOD_MS: Record<ModelPeriod, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 }

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

export interface Counter {
  value: number
  expiresAt: number | undefined
  /** Holds of this counter by id; they live as long as it does. */
  holds: Map<string, ModelHoldEntry>
}

export interface ModelHoldEntry {
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

export interface IdempotencyRecord {
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

export const UNLIMITED: ModelResult = {
  status: 'unlimited',
  allowed: true,
  usage: 0,
  limit: Infinity,
  remaining: Infinity,
}

/** The quota's default `holdMs`, which `transact` holds for. */
export const TRANSACT_HOLD_MS = 60_000

/** Start of the window containing `now` (UTC; minute, hour and day windows are epoch-aligned). */
export function windowStartAt(period: ModelPeriod, now: number): number {
  return Math.floor(now / PERIOD_MS[period]) * PERIOD_MS[period]
}
