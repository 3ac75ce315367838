import type { CounterOp } from './contract.js'

/** What checking one op found: it fits (`undefined`), a settle that only replayed, or why it is refused. */
export type OpOutcome<Refusal extends string> = Refusal | 'replayed' | undefined

/**
 * How the checks of an `apply` ended: the refusal to answer (the refused op's index and the
 * reason), or, every op fitting, how many of them only replayed a settle.
 */
export type OpsVerdict<Refusal extends string> =
  | { refused: true; index: number; reason: Refusal | 'missing' }
  | { refused: false; replayedSettles: number }

/**
 * The order in which a store checks the ops of one `apply` before it writes anything, per the
 * contract (see `CounterOp`): in order, the first refusal wins; an op on a counter that is
 * missing with `ifMissing: 'report'` is not checked, nor is any later op on that counter, and the
 * counter is reported missing only when no other op is refused (loading it could not make the
 * call fit).
 *
 * A generator, so that a synchronous store and an asynchronous one follow the same rules: it
 * yields the index of each op to check, and is resumed with that op's outcome. `exists` is asked
 * about an op's counter just before the op would be checked, so it sees the earlier ops' effects.
 *
 * @param ops - the call's ops, as `apply` got them.
 * @param exists - whether a counter exists, as the call sees it so far.
 * @returns a generator of op indexes to check, ending in the call's `OpsVerdict`.
 * @example
 * ```ts
 * const order = checkOrder<'limit' | 'floor'>(ops, (key) => scratch.get(key) !== undefined)
 * let step = order.next()
 * while (!step.done) step = order.next(checkOp(ops[step.value]!))
 * const verdict = step.value // { refused: true, index, reason } or { refused: false, replayedSettles }
 * ```
 */
export function* checkOrder<Refusal extends string>(
  ops: readonly CounterOp[],
  exists: (key: string) => boolean,
): Generator<number, OpsVerdict<Refusal>, OpOutcome<Refusal>> {
  const reported = new Set<string>()
  let missing = -1
  let replayedSettles = 0
  for (const [index, op] of ops.entries()) {
    if (reported.has(op.key)) continue
    if (op.ifMissing === 'report' && !exists(op.key)) {
      if (missing < 0) missing = index
      reported.add(op.key)
      continue
    }
    const outcome = yield index
    if (outcome === 'replayed') replayedSettles++
    else if (outcome !== undefined) return { refused: true, index, reason: outcome }
  }
  return missing >= 0 ? { refused: true, index: missing, reason: 'missing' } : { refused: false, replayedSettles }
}
