import type { ApplyOptions, ApplyResult, CounterOp } from '@andromeda/core'
import { checkOrder, type OpOutcome } from '@andromeda/core/store'
import type { PlannedWrite } from './backend.js'
import { type CounterEntry, type CounterState, PlanCall, type ReadEntry } from './process-call.js'
import { settledKeyOf } from './process-holds.js'
import { revokeLoads } from './process-loads.js'
import { grantWrites } from './process-writes.js'

export type { ReadEntry } from './process-call.js'

/** What `apply` answers, and what it must write first (in order). */
export interface ApplyPlan {
  result: ApplyResult
  writes: PlannedWrite[]
}

type Refusal = 'limit' | 'floor' | 'missing' | 'hold'

/**
 * Decide one `apply` on the process-atomic path from reads alone; the caller then makes the
 * writes, in order, with the keys held. The rules are the contract's (see `CounterOp` in
 * @andromeda/core): every op is checked before anything is written, and a refusal writes
 * nothing of the call, except giving back expired holds, which are gone whatever it decides.
 * Expired holds of a counter are given back when the call reads its holds anyway: for an op
 * that holds or settles, and before an op on it is refused for the bound (then checked again).
 * A give-back that meets a missing counter revokes its loader lock, also when the call is refused
 * (see `process-loads.ts`).
 */
export async function planApply(
  read: ReadEntry,
  ops: readonly CounterOp[],
  opts: ApplyOptions,
  clock: () => number,
): Promise<ApplyPlan> {
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
  const counters = loaded as (CounterEntry | undefined)[]
  const revoked = await revokeLoads(read, ops, distinct, counters)
  const call = new PlanCall(read, ops, clock(), clock, distinct, counters)
  const checked = await checkOps(call)
  if (typeof checked !== 'number') return { result: checked.result, writes: [...revoked, ...checked.writes] }
  const values = ops.map((op) => call.state(op.key).value)
  const ttlMs = ops.map((op) => call.ttlOf(call.state(op.key).expiresAt))
  const writes = [...revoked, ...(await grantWrites(call, opts, values, ttlMs))]
  // Every op settled a hold that was settled before: nothing changed, the earlier answer stands.
  if (checked === ops.length) return { result: { ok: true, values, ttlMs, replayed: true }, writes }
  return { result: { ok: true, values, ttlMs }, writes }
}

/** Check every op on the scratch copy, in the contract's order: the refusal's plan, or how many ops only replayed a settle. */
async function checkOps(call: PlanCall): Promise<ApplyPlan | number> {
  const order = checkOrder<Refusal>(call.ops, (key) => call.state(key).exists)
  let step = order.next()
  while (!step.done) step = order.next(await checkOp(call, call.ops[step.value]!))
  const verdict = step.value
  return verdict.refused ? refuse(call, verdict.index, verdict.reason) : verdict.replayedSettles
}

function checkOp(call: PlanCall, op: CounterOp): Promise<OpOutcome<Refusal>> {
  const state = call.state(op.key)
  return op.settle === undefined ? checkDelta(call, op, state) : checkSettle(call, op, op.settle, state)
}

/** A settle: the kept units stay, the rest come back; a hold settled before (in this call or within its length) changes nothing. */
async function checkSettle(
  call: PlanCall,
  op: CounterOp,
  settle: { id: string; keep: number },
  state: CounterState,
): Promise<Refusal | 'replayed' | undefined> {
  const { id, keep } = settle
  // Read lazily, as for a new hold: the counter's other expired holds stay counted until they
  // matter (a refusal, a read), as on every store; only this hold's own state counts here.
  const holds = await call.holdsOf(op.key, state, true)
  const hold = holds.live.get(id)
  if (hold !== undefined && hold.expiresAt > call.now) {
    state.value = Math.max(state.value - (hold.cost - Math.min(keep, hold.cost)), 0)
    holds.live.delete(id)
    holds.changed = true
    state.dirty = true
    state.settled.push({ id, holdMs: hold.holdMs })
    return undefined
  }
  if (state.settled.some((settled) => settled.id === id) || (await call.read(settledKeyOf(op.key, id), 'settled')))
    return 'replayed'
  // The hold is gone or lapsed: refused, and the expired holds come back now (whatever the call decides).
  await call.holdsOf(op.key, state)
  return 'hold'
}

/** A consume or refund, maybe holding its units. */
async function checkDelta(call: PlanCall, op: CounterOp, state: CounterState): Promise<Refusal | undefined> {
  const hold = op.hold !== undefined && op.delta > 0 ? op.hold : undefined
  // A new hold rewrites the holds entry (expired ones stay counted until they matter).
  if (hold) await call.holdsOf(op.key, state, true)
  const over = () =>
    op.delta > 0 &&
    ((op.max !== undefined && state.value + op.delta > op.max) || !Number.isSafeInteger(state.value + op.delta))
  // Expired holds may make room.
  if (over() && state.stored?.held && (!state.holds || state.holds.lazy)) await call.holdsOf(op.key, state)
  if (over()) return 'limit'
  if (op.delta < 0 && op.min !== undefined && state.value + op.delta < op.min) return 'floor'
  if (op.delta === 0) return undefined
  if (!state.exists) {
    state.exists = true
    state.expiresAt = op.ttlMs === undefined ? undefined : call.now + op.ttlMs
  }
  state.value += op.delta
  state.dirty = true
  if (hold) {
    state.holds!.live.set(hold.id, { cost: op.delta, expiresAt: call.now + hold.holdMs, holdMs: hold.holdMs })
    state.holds!.changed = true
  }
  return undefined
}

/** A refusal writes nothing of the call but the give-back of expired holds it read. */
function refuse(call: PlanCall, index: number, reason: Refusal): ApplyPlan {
  const stateOf = (op: CounterOp) => call.state(op.key)
  return {
    result: {
      ok: false,
      index,
      reason,
      values: call.ops.map((op) => stateOf(op).holds?.reclaimedValue ?? stateOf(op).stored?.value),
      ttlMs: call.ops.map((op) => call.ttlOf(stateOf(op).stored?.expiresAt)),
    },
    writes: [...call.states.values()].flatMap((state) => state.holds?.reclaim ?? []),
  }
}
