import type { ApplyOptions, ApplyResult, CounterOp } from '@andromeda/core'
import type { PlannedWrite, StoredEntry } from './backend.js'
import { counterEntry, type Hold, holdsEntry, holdsKeyOf, holdsOf as holdsMap, reclaimExpired, settledKeyOf } from './process-holds.js'

type EntryOf<K extends StoredEntry['type']> = Extract<StoredEntry, { type: K }>
type CounterEntry = EntryOf<'counter'>

const DEFAULT_IDEMPOTENCY_TTL_MS = 86_400_000

/** Reads of one critical section: the live entry of a type at `key`, or undefined. */
export type ReadEntry = <K extends StoredEntry['type']>(key: string, type: K) => Promise<EntryOf<K> | undefined>

/** What `apply` answers, and what it must write first (in order). */
export interface ApplyPlan {
  result: ApplyResult
  writes: PlannedWrite[]
}

/** A counter's holds as one call works on them. */
interface CallHolds {
  /** The holds entry as stored (undefined: none was read). */
  previous: EntryOf<'holds'> | undefined
  /** Live holds, with this call's changes. */
  live: Map<string, Hold>
  changed: boolean
  /** The writes that give back the expired holds: done even when the call is refused. */
  reclaim: PlannedWrite[]
  /** The counter's value right after that give-back. */
  reclaimedValue: number | undefined
  /** Read for a new hold: expired holds are still in `live`, not given back yet. */
  lazy: boolean
}

/** One counter as the ops of a call see it. */
interface CounterState {
  stored: CounterEntry | undefined
  value: number
  expiresAt: number | undefined
  exists: boolean
  dirty: boolean
  /** Loaded only when an op needs them (a hold, a settle, a refusal for the bound). */
  holds: CallHolds | undefined
  settled: { id: string; holdMs: number }[]
}

/**
 * Decide one `apply` on the process-atomic path from reads alone; the caller then makes the
 * writes, in order, with the keys held. The rules are the contract's (see `CounterOp` in
 * @andromeda/core): every op is checked before anything is written, and a refusal writes
 * nothing of the call, except giving back expired holds, which are gone whatever it decides.
 * Expired holds of a counter are given back when the call reads its holds anyway: for an op
 * that holds or settles, and before an op on it is refused for the bound (then checked again).
 */
export async function planApply(read: ReadEntry, ops: readonly CounterOp[], opts: ApplyOptions, clock: () => number): Promise<ApplyPlan> {
  const distinct = [...new Set(ops.map((op) => op.key))]
  const [record, ...loaded] = await Promise.all([
    opts.idempotencyKey === undefined ? undefined : read(opts.idempotencyKey, 'record'),
    ...distinct.map((key) => read(key, 'counter')),
  ])
  if (record) {
    // Lifetimes as seen now, so a replay reports the reset time the recorded call did.
    const elapsed = clock() - record.recordedAt
    const ttlMs = record.ttlMs.map((t) => (t === null ? undefined : t - elapsed))
    return { result: { ok: true, values: [...record.values], ttlMs, replayed: true }, writes: [] }
  }
  const ttlOf = (expiresAt: number | undefined) => (expiresAt === undefined ? undefined : Math.max(expiresAt - clock(), 1))
  const now = clock()

  // Work on a scratch copy so several ops on one key see each other, and a refusal writes nothing.
  const states = new Map<string, CounterState>()
  for (const [i, key] of distinct.entries()) {
    const stored = loaded[i] as CounterEntry | undefined
    states.set(key, { stored, value: stored?.value ?? 0, expiresAt: stored?.expiresAt, exists: stored !== undefined, dirty: false, holds: undefined, settled: [] })
  }

  /**
   * The counter's holds for this call. Expired ones are given back (as the contract says: only
   * where it matters) for a settle, and before a refusal for the bound; a new hold reads them
   * `lazy`, keeping expired ones counted, as every other store does.
   */
  async function holdsOf(key: string, state: CounterState, lazy = false): Promise<CallHolds> {
    if (state.holds && !(state.holds.lazy && !lazy)) return state.holds
    const stored = state.stored
    if (!stored?.held) {
      // A counter without holds, or created by this call: any holds entry left there is stale.
      state.holds ??= { previous: undefined, live: new Map(), changed: false, reclaim: [], reclaimedValue: undefined, lazy: false }
      return state.holds
    }
    if (state.holds?.lazy) {
      // Read for a new hold earlier in this call: give the expired ones back now.
      const holds = state.holds
      const { value, writes } = reclaimExpired(key, stored, holds.previous, now)
      for (const [id, hold] of holds.live) if (hold.expiresAt <= now) holds.live.delete(id)
      holds.lazy = false
      if (writes.length > 0) {
        state.value = Math.max(state.value - (stored.value - value), 0)
        state.dirty = true
        holds.changed = true
        holds.reclaim = writes
        holds.reclaimedValue = value
      }
      return holds
    }
    const previous = await read(holdsKeyOf(key), 'holds')
    if (lazy) {
      state.holds = { previous, live: holdsMap(previous), changed: false, reclaim: [], reclaimedValue: undefined, lazy: true }
      return state.holds
    }
    const { value, live, writes } = reclaimExpired(key, stored, previous, now)
    state.holds = { previous, live, changed: writes.length > 0, reclaim: writes, reclaimedValue: writes.length > 0 ? value : undefined, lazy: false }
    if (writes.length > 0) {
      state.value = Math.max(state.value - (stored.value - value), 0)
      state.dirty = true
    }
    return state.holds
  }

  const refuse = (index: number, reason: 'limit' | 'floor' | 'missing' | 'hold'): ApplyPlan => {
    const stateOf = (op: CounterOp) => states.get(op.key)!
    return {
      result: {
        ok: false,
        index,
        reason,
        values: ops.map((op) => stateOf(op).holds?.reclaimedValue ?? stateOf(op).stored?.value),
        ttlMs: ops.map((op) => ttlOf(stateOf(op).stored?.expiresAt)),
      },
      writes: [...states.values()].flatMap((state) => state.holds?.reclaim ?? []),
    }
  }

  // A counter to report missing is reported only when no other op is refused: loading it
  // could not make the call fit.
  const unknown = new Set<string>()
  let missing = -1
  let replayedSettles = 0
  for (const [index, op] of ops.entries()) {
    if (unknown.has(op.key)) continue
    const state = states.get(op.key)!
    if (!state.exists && op.ifMissing === 'report') {
      if (missing < 0) missing = index
      unknown.add(op.key)
      continue
    }
    if (op.settle !== undefined) {
      const { id, keep } = op.settle
      const holds = await holdsOf(op.key, state)
      const hold = holds.live.get(id)
      if (hold !== undefined) {
        state.value = Math.max(state.value - (hold.cost - Math.min(keep, hold.cost)), 0)
        holds.live.delete(id)
        holds.changed = true
        state.dirty = true
        state.settled.push({ id, holdMs: hold.holdMs })
        continue
      }
      // Settled before (in this call or within the hold's length): nothing changes.
      if (state.settled.some((settled) => settled.id === id) || (await read(settledKeyOf(op.key, id), 'settled'))) {
        replayedSettles++
        continue
      }
      return refuse(index, 'hold')
    }
    const hold = op.hold !== undefined && op.delta > 0 ? op.hold : undefined
    // A new hold rewrites the holds entry (expired ones stay counted until they matter).
    if (hold) await holdsOf(op.key, state, true)
    const over = () => op.delta > 0 && ((op.max !== undefined && state.value + op.delta > op.max) || !Number.isSafeInteger(state.value + op.delta))
    // Expired holds may make room.
    if (over() && state.stored?.held && (!state.holds || state.holds.lazy)) await holdsOf(op.key, state)
    if (over()) return refuse(index, 'limit')
    if (op.delta < 0 && op.min !== undefined && state.value + op.delta < op.min) return refuse(index, 'floor')
    if (op.delta === 0) continue
    if (!state.exists) {
      state.exists = true
      state.expiresAt = op.ttlMs === undefined ? undefined : now + op.ttlMs
    }
    state.value += op.delta
    state.dirty = true
    if (hold) {
      const holds = state.holds!
      holds.live.set(hold.id, { cost: op.delta, expiresAt: now + hold.holdMs, holdMs: hold.holdMs })
      holds.changed = true
    }
  }
  if (missing >= 0) return refuse(missing, 'missing')

  const values = ops.map((op) => states.get(op.key)!.value)
  const ttlMs = ops.map((op) => ttlOf(states.get(op.key)!.expiresAt))
  const writes = counterWrites(states, now)
  if (opts.clearIdempotencyKey !== undefined) {
    const previous = await read(opts.clearIdempotencyKey, 'record')
    if (previous) writes.push({ key: opts.clearIdempotencyKey, entry: undefined, previous })
  }
  if (opts.idempotencyKey !== undefined) {
    const lifetime = opts.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS
    const entry: StoredEntry = { type: 'record', values, ttlMs: ttlMs.map((t) => t ?? null), recordedAt: now, expiresAt: now + lifetime }
    writes.push({ key: opts.idempotencyKey, entry, previous: undefined })
  }
  // Every op settled a hold that was settled before: nothing changed, the earlier answer stands.
  if (replayedSettles === ops.length) return { result: { ok: true, values, ttlMs, replayed: true }, writes }
  return { result: { ok: true, values, ttlMs }, writes }
}

/** The writes of a granted call: each changed counter with its holds, then the settled marks. */
function counterWrites(states: ReadonlyMap<string, CounterState>, now: number): PlannedWrite[] {
  const writes: PlannedWrite[] = []
  const marks: PlannedWrite[] = []
  for (const [key, state] of states) {
    if (!state.dirty) continue
    const holds = state.holds
    const held = holds ? holds.live.size > 0 : state.stored?.held === true
    const counter: PlannedWrite = { key, entry: counterEntry(state.value, state.expiresAt, held), previous: state.stored }
    const entry = holds?.changed ? holdsEntry(holds.live, state.expiresAt) : undefined
    if (!holds?.changed || (entry === undefined && holds.previous === undefined)) {
      writes.push(counter)
    } else {
      const holdsWrite: PlannedWrite = { key: holdsKeyOf(key), entry, previous: holds.previous }
      // Holds taken out are written before the counter, new ones after it: a process that dies
      // in between leaves units held for good, never given back twice.
      const takesOut = state.settled.length > 0 || holds.reclaim.length > 0
      writes.push(...(takesOut ? [holdsWrite, counter] : [counter, holdsWrite]))
    }
    for (const { id, holdMs } of state.settled) {
      marks.push({ key: settledKeyOf(key, id), entry: { type: 'settled', expiresAt: now + holdMs }, previous: undefined })
    }
  }
  // Last: a settled mark must never stand for a settle that was not written.
  return [...writes, ...marks]
}
