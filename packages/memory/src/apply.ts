import type { ApplyOptions, ApplyResult, CounterOp } from '@andromeda/core'
import { checkApplyArgs, checkOrder, type OpOutcome } from '@andromeda/core/store'
import { Counter, type Entries, HeldCounter } from './entries.js'

const DEFAULT_RECORD_TTL_MS = 86_400_000

/**
 * `apply` on the memory store: one synchronous block, so atomic within the process. The
 * rules are the contract's (see `CounterOp` in @andromeda/core): check every op first, write
 * only when all fit; a refusal writes nothing of the call.
 *
 * The general path checks its ops and options first (an `InvalidArgumentError` naming the
 * field); a single plain op goes to `applyOne` unchecked, so a consume costs no checks the
 * engine already made.
 */
export function apply(entries: Entries, ops: readonly CounterOp[], options: ApplyOptions): ApplyResult {
  if (ops.length === 1 && options.idempotencyKey === undefined && options.clearIdempotencyKey === undefined) {
    const op = ops[0]!
    if (op.hold === undefined && op.settle === undefined) return applyOne(entries, op)
  }
  checkApplyArgs(ops, options)
  return applyMany(entries, ops, options)
}

/**
 * One plain op, no record: a consume or a refund, the hot path. One function on purpose: a
 * grant answers with its own result object, with no call or allocation it could do without.
 */
function applyOne(entries: Entries, op: CounterOp): ApplyResult {
  const key = op.key
  const delta = op.delta
  const entry = entries.entry(key)
  if (entry instanceof Counter) {
    // A live boxed counter, changed in place.
    const next = entry.value + delta
    if (delta > 0 && ((op.max !== undefined && next > op.max) || !Number.isSafeInteger(next))) {
      // Expired holds may make room: the general path gives them back and checks again.
      if (entry instanceof HeldCounter && entry.holds.size > 0) return applyMany(entries, [op], {})
      return refusedOne('limit', entry.value, entry.hasTtl ? entries.liveTtlOf(key) : undefined)
    }
    if (delta < 0 && op.min !== undefined && next < op.min) {
      return refusedOne('floor', entry.value, entry.hasTtl ? entries.liveTtlOf(key) : undefined)
    }
    entry.value = next
    return { ok: true, values: [next], ttlMs: [entry.hasTtl ? entries.liveTtlOf(key) : undefined] }
  }
  const current = entry
  if (current === undefined && delta < 0) entries.revokeLoad(key)
  if (current === undefined && op.ifMissing === 'report')
    return { ok: false, index: 0, reason: 'missing', values: [undefined], ttlMs: [undefined] }
  const next = (current ?? 0) + delta
  if (delta > 0 && ((op.max !== undefined && next > op.max) || !Number.isSafeInteger(next))) {
    if (current !== undefined && entries.hasHolds(key)) return applyMany(entries, [op], {})
    return refusedOne('limit', current, current === undefined ? undefined : entries.liveTtlOf(key))
  }
  if (delta < 0 && op.min !== undefined && next < op.min) {
    return refusedOne('floor', current, current === undefined ? undefined : entries.liveTtlOf(key))
  }
  if (current === undefined) {
    if (delta === 0) return { ok: true, values: [0], ttlMs: [undefined] }
    // A new counter lives exactly its ttlMs from now.
    entries.create(key, next, op.ttlMs)
    return { ok: true, values: [next], ttlMs: [op.ttlMs] }
  }
  if (delta !== 0) entries.update(key, next)
  return { ok: true, values: [next], ttlMs: [entries.liveTtlOf(key)] }
}

/** The refusal of a one-op call: the counter's value and lifetime as they stand (undefined: missing, none). */
function refusedOne(reason: 'limit' | 'floor', value: number | undefined, ttlMs: number | undefined): ApplyResult {
  return { ok: false, index: 0, reason, values: [value], ttlMs: [ttlMs] }
}

/** One counter as the ops of a call see it: its running value, and what the call will write. */
interface Scratch {
  value: number
  exists: boolean
  /** Created by this call, with this lifetime. */
  created: boolean
  ttlMs: number | undefined
  written: boolean
  /** Expired holds were given back already in this call. */
  reclaimed: boolean
  holds: { id: string; cost: number; holdMs: number }[]
  settled: string[]
}

type Refusal = 'limit' | 'floor' | 'missing' | 'hold'

/**
 * The general path: replay a recorded call, else check every op on a scratch copy (so several
 * ops on one key see each other and a refusal writes nothing), then write and record.
 */
function applyMany(entries: Entries, ops: readonly CounterOp[], options: ApplyOptions): ApplyResult {
  const replay = options.idempotencyKey === undefined ? undefined : replayOf(entries, options.idempotencyKey)
  if (replay !== undefined) return replay
  const call = new Call(entries, ops, entries.clock())
  const checked = checkOps(call)
  if (typeof checked !== 'number') return checked
  writeScratch(call)
  return answer(call, options, checked)
}

/** The recorded answer of an idempotency key, its lifetimes as seen now (so a replay reports the reset time the recorded call did). */
function replayOf(entries: Entries, idempotencyKey: string): ApplyResult | undefined {
  const record = entries.record(idempotencyKey)
  if (!record) return undefined
  const elapsed = entries.clock() - record.recordedAt
  const ttlMs = record.ttlMs.map((ttl) => (ttl === undefined ? undefined : ttl - elapsed))
  return { ok: true, values: [...record.values], ttlMs, replayed: true }
}

/** One call of the general path: the ops, the time it runs at, and its scratch copy of each counter. */
class Call {
  readonly scratch = new Map<string, Scratch>()

  constructor(
    readonly entries: Entries,
    readonly ops: readonly CounterOp[],
    readonly now: number,
  ) {}

  stateOf(key: string): Scratch {
    let state = this.scratch.get(key)
    if (state === undefined) {
      const value = this.entries.value(key)
      state = {
        value: value ?? 0,
        exists: value !== undefined,
        created: false,
        ttlMs: undefined,
        written: false,
        reclaimed: false,
        holds: [],
        settled: [],
      }
      this.scratch.set(key, state)
    }
    return state
  }

  /** Give back the counter's expired holds, now (they are gone whatever this call decides). */
  reclaim(key: string, state: Scratch): void {
    state.reclaimed = true
    const units = this.entries.takeExpiredHolds(key)
    if (units === 0 || !state.exists) return
    state.value = Math.max(state.value - units, 0)
    const stored = this.entries.value(key)
    if (stored !== undefined) this.entries.update(key, Math.max(stored - units, 0))
  }

  refuse(index: number, reason: Refusal): ApplyResult {
    const { entries } = this
    return {
      ok: false,
      index,
      reason,
      values: this.ops.map((op) => entries.value(op.key)),
      ttlMs: this.ops.map((op) => entries.ttlOf(op.key)),
    }
  }
}

/** Check every op on the scratch copy, in the contract's order: the refusal, or how many ops only replayed a settle. */
function checkOps(call: Call): ApplyResult | number {
  revokeLoads(call)
  const order = checkOrder<Refusal>(call.ops, (key) => call.stateOf(key).exists)
  let step = order.next()
  while (!step.done) step = order.next(checkOp(call, call.ops[step.value]!))
  const verdict = step.value
  return verdict.refused ? call.refuse(verdict.index, verdict.reason) : verdict.replayedSettles
}

function checkOp(call: Call, op: CounterOp): OpOutcome<Refusal> {
  const state = call.stateOf(op.key)
  return op.settle === undefined ? checkDelta(call, op, state) : checkSettle(call, op, op.settle, state)
}

/**
 * A give-back that meets its counter missing revokes a load of it under way (see `CounterOp`),
 * whatever the call answers: so before any op is checked, on the counters as the call found them.
 */
function revokeLoads(call: Call): void {
  for (const op of call.ops) {
    if ((op.delta < 0 || op.settle !== undefined) && !call.stateOf(op.key).exists) call.entries.revokeLoad(op.key)
  }
}

/** A settle on the scratch copy: the kept units stay, the rest come back. */
function checkSettle(
  call: Call,
  op: CounterOp,
  settle: { id: string; keep: number },
  state: Scratch,
): Refusal | 'replayed' | undefined {
  const hold = call.entries.hold(op.key, settle.id)
  if (hold === undefined || hold.expiresAt <= call.now) {
    if (hold === undefined && call.entries.wasSettled(op.key, settle.id)) return 'replayed'
    if (!state.reclaimed) call.reclaim(op.key, state)
    return 'hold'
  }
  state.value = Math.max(state.value - (hold.cost - Math.min(settle.keep, hold.cost)), 0)
  state.written = true
  state.settled.push(settle.id)
  return undefined
}

/** A consume or refund (maybe holding its units) on the scratch copy. Expired holds may make room for one over the bound. */
function checkDelta(call: Call, op: CounterOp, state: Scratch): Refusal | undefined {
  const delta = op.delta
  let next = state.value + delta
  const over = () => delta > 0 && ((op.max !== undefined && next > op.max) || !Number.isSafeInteger(next))
  if (over() && state.exists && !state.reclaimed) {
    call.reclaim(op.key, state)
    next = state.value + delta
  }
  if (over()) return 'limit'
  if (delta < 0 && op.min !== undefined && next < op.min) return 'floor'
  if (delta !== 0) {
    if (!state.exists) {
      state.exists = true
      state.created = true
      state.ttlMs = op.ttlMs
    }
    state.value = next
    state.written = true
  }
  if (op.hold !== undefined && delta > 0) state.holds.push({ id: op.hold.id, cost: delta, holdMs: op.hold.holdMs })
  return undefined
}

/** Write every counter the call changed, with its settled and new holds. */
function writeScratch(call: Call): void {
  const { entries, now } = call
  for (const [key, state] of call.scratch) {
    if (!state.written) continue
    if (state.created) entries.create(key, state.value, state.ttlMs)
    else entries.update(key, state.value)
    for (const id of state.settled) entries.settleHold(key, id)
    for (const hold of state.holds)
      entries.addHold(key, hold.id, { cost: hold.cost, expiresAt: now + hold.holdMs, holdMs: hold.holdMs })
  }
}

/**
 * A counter's remaining lifetime after the call. The clock runs on during a call (a slow first
 * call, a GC pause): a counter whose lifetime ran out meanwhile is reported as ended (0), never
 * as one without expiry (undefined).
 */
function lifetimeAfter(call: Call, key: string): number | undefined {
  const ttlMs = call.entries.ttlOf(key)
  if (ttlMs === undefined && call.scratch.get(key)?.exists && call.entries.value(key) === undefined) return 0
  return ttlMs
}

/** The granted answer: clear and write the idempotency records, then say whether only settles were replayed. */
function answer(call: Call, options: ApplyOptions, replayedSettles: number): ApplyResult {
  const { entries, ops } = call
  const values = ops.map((op) => call.scratch.get(op.key)?.value ?? entries.value(op.key) ?? 0)
  const ttlMs = ops.map((op) => lifetimeAfter(call, op.key))
  // A settle that only replays changed nothing: the record it would clear stays the earlier call's.
  if (options.clearIdempotencyKey !== undefined && replayedSettles !== ops.length)
    entries.delete(options.clearIdempotencyKey)
  if (options.idempotencyKey !== undefined) {
    entries.setRecord(
      options.idempotencyKey,
      { kind: 'record', values: [...values], ttlMs, recordedAt: entries.clock() },
      options.idempotencyTtlMs ?? DEFAULT_RECORD_TTL_MS,
    )
  }
  // Every op settled a hold that was settled before: nothing changed, the earlier answer stands.
  if (replayedSettles === ops.length) return { ok: true, values, ttlMs, replayed: true }
  return { ok: true, values, ttlMs }
}
