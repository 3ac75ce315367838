import type { ApplyOptions } from '@andromeda/core'
import type { PlannedWrite, StoredEntry } from './backend.js'
import type { CounterState, PlanCall } from './process-call.js'
import { counterEntry, holdsEntry, holdsKeyOf, settledKeyOf } from './process-holds.js'

const DEFAULT_IDEMPOTENCY_TTL_MS = 86_400_000

/** The writes of a granted call: its counters (see `counterWrites`), then the idempotency records it clears and makes. */
export async function grantWrites(
  call: PlanCall,
  opts: ApplyOptions,
  values: number[],
  ttlMs: (number | undefined)[],
): Promise<PlannedWrite[]> {
  const writes = counterWrites(call.states, call.now)
  if (opts.clearIdempotencyKey !== undefined) {
    const previous = await call.read(opts.clearIdempotencyKey, 'record')
    if (previous) writes.push({ key: opts.clearIdempotencyKey, entry: undefined, previous })
  }
  if (opts.idempotencyKey !== undefined) {
    const now = call.now
    const lifetime = opts.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS
    const entry: StoredEntry = {
      type: 'record',
      values,
      ttlMs: ttlMs.map((t) => t ?? null),
      recordedAt: now,
      expiresAt: now + lifetime,
    }
    writes.push({ key: opts.idempotencyKey, entry, previous: undefined })
  }
  return writes
}

/** Each changed counter with its holds, then the settled marks. */
function counterWrites(states: ReadonlyMap<string, CounterState>, now: number): PlannedWrite[] {
  const writes: PlannedWrite[] = []
  const marks: PlannedWrite[] = []
  for (const [key, state] of states) {
    if (!state.dirty) continue
    const holds = state.holds
    const held = holds ? holds.live.size > 0 : state.stored?.held === true
    const counter: PlannedWrite = {
      key,
      entry: counterEntry(state.value, state.expiresAt, held),
      previous: state.stored,
    }
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
      marks.push({
        key: settledKeyOf(key, id),
        entry: { type: 'settled', expiresAt: now + holdMs },
        previous: undefined,
      })
    }
  }
  // Last: a settled mark must never stand for a settle that was not written.
  return [...writes, ...marks]
}
