import type { ApplyOptions, ApplyResult, CounterOp } from '@andromeda/core'
import { Counter, type Entries, HeldCounter } from './entries.js'

const DEFAULT_RECORD_TTL_MS = 86_400_000

/**
 * `apply` on the memory store: one synchronous block, so atomic within the process. The
 * rules are the contract's (see `CounterOp` in @andromeda/core): check every op first, write
 * only when all fit; a refusal writes nothing of the call.
 */
export function apply(entries: Entries, ops: readonly CounterOp[], options: ApplyOptions): ApplyResult {
  if (ops.length === 1 && options.idempotencyKey === undefined && options.clearIdempotencyKey === undefined) {
    const op = ops[0]!
    if (op.hold === undefined && op.settle === undefined) return applyOne(entries, op)
  }
  return applyMany(entries, ops, options)
}

/** One plain op, no record: a consume or a refund, the hot path. */
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
      return { ok: false, index: 0, reason: 'limit', values: [entry.value], ttlMs: [entry.hasTtl ? entries.liveTtlOf(key) : undefined] }
    }
    if (delta < 0 && op.min !== undefined && next < op.min) {
      return { ok: false, index: 0, reason: 'floor', values: [entry.value], ttlMs: [entry.hasTtl ? entries.liveTtlOf(key) : undefined] }
    }
    entry.value = next
    return { ok: true, values: [next], ttlMs: [entry.hasTtl ? entries.liveTtlOf(key) : undefined] }
  }
  const current = entry
  if (current === undefined && op.ifMissing === 'report') return { ok: false, index: 0, reason: 'missing', values: [undefined], ttlMs: [undefined] }
  const next = (current ?? 0) + delta
  if (delta > 0 && ((op.max !== undefined && next > op.max) || !Number.isSafeInteger(next))) {
    if (current !== undefined && entries.hasHolds(key)) return applyMany(entries, [op], {})
    return { ok: false, index: 0, reason: 'limit', values: [current], ttlMs: [current === undefined ? undefined : entries.liveTtlOf(key)] }
  }
  if (delta < 0 && op.min !== undefined && next < op.min) {
    return { ok: false, index: 0, reason: 'floor', values: [current], ttlMs: [current === undefined ? undefined : entries.liveTtlOf(key)] }
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

function applyMany(entries: Entries, ops: readonly CounterOp[], options: ApplyOptions): ApplyResult {
  if (options.idempotencyKey !== undefined) {
    const record = entries.record(options.idempotencyKey)
    if (record) {
      // Lifetimes as seen now, so a replay reports the reset time the recorded call did.
      const elapsed = entries.clock() - record.recordedAt
      const ttlMs = record.ttlMs.map((ttl) => (ttl === undefined ? undefined : ttl - elapsed))
      return { ok: true, values: [...record.values], ttlMs, replayed: true }
    }
  }
  const now = entries.clock()
  const scratch = new Map<string, Scratch>()
  const stateOf = (key: string): Scratch => {
    let state = scratch.get(key)
    if (state === undefined) {
      const value = entries.value(key)
      state = { value: value ?? 0, exists: value !== undefined, created: false, ttlMs: undefined, written: false, reclaimed: false, holds: [], settled: [] }
      scratch.set(key, state)
    }
    return state
  }
  /** Give back the counter's expired holds, now (they are gone whatever this call decides). */
  const reclaim = (key: string, state: Scratch): void => {
    state.reclaimed = true
    const units = entries.takeExpiredHolds(key)
    if (units === 0 || !state.exists) return
    state.value = Math.max(state.value - units, 0)
    const stored = entries.value(key)
    if (stored !== undefined) entries.update(key, Math.max(stored - units, 0))
  }
  const refuse = (index: number, reason: 'limit' | 'floor' | 'missing' | 'hold'): ApplyResult => ({
    ok: false,
    index,
    reason,
    values: ops.map((op) => entries.value(op.key)),
    ttlMs: ops.map((op) => entries.ttlOf(op.key)),
  })

  // A counter to report missing is reported only when no other op is refused: loading it
  // could not make the call fit.
  const unknown = new Set<string>()
  let missing = -1
  let replayedSettles = 0
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!
    if (unknown.has(op.key)) continue
    const state = stateOf(op.key)
    if (!state.exists && op.ifMissing === 'report') {
      if (missing < 0) missing = i
      unknown.add(op.key)
      continue
    }
    if (op.settle !== undefined) {
      const hold = entries.hold(op.key, op.settle.id)
      if (hold === undefined || hold.expiresAt <= now) {
        if (hold === undefined && entries.wasSettled(op.key, op.settle.id)) {
          replayedSettles++
          continue
        }
        if (!state.reclaimed) reclaim(op.key, state)
        return refuse(i, 'hold')
      }
      state.value = Math.max(state.value - (hold.cost - Math.min(op.settle.keep, hold.cost)), 0)
      state.written = true
      state.settled.push(op.settle.id)
      continue
    }
    const delta = op.delta
    let next = state.value + delta
    const over = () => delta > 0 && ((op.max !== undefined && next > op.max) || !Number.isSafeInteger(next))
    if (over() && state.exists && !state.reclaimed) {
      reclaim(op.key, state)
      next = state.value + delta
    }
    if (over()) return refuse(i, 'limit')
    if (delta < 0 && op.min !== undefined && next < op.min) return refuse(i, 'floor')
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
  }
  if (missing >= 0) return refuse(missing, 'missing')

  for (const [key, state] of scratch) {
    if (!state.written) continue
    if (state.created) entries.create(key, state.value, state.ttlMs)
    else entries.update(key, state.value)
    for (const id of state.settled) entries.settleHold(key, id)
    for (const hold of state.holds) entries.addHold(key, hold.id, { cost: hold.cost, expiresAt: now + hold.holdMs, holdMs: hold.holdMs })
  }
  const values = ops.map((op) => scratch.get(op.key)?.value ?? entries.value(op.key) ?? 0)
  const ttlMs = ops.map((op) => entries.ttlOf(op.key))
  // A settle that only replays changed nothing: the record it would clear stays the earlier call's.
  if (options.clearIdempotencyKey !== undefined && replayedSettles !== ops.length) entries.delete(options.clearIdempotencyKey)
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
