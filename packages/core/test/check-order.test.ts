import { describe, expect, it } from 'vitest'
import type { CounterOp } from '../src/index.js'
import { checkOrder, type OpOutcome, type OpsVerdict } from '../src/store/index.js'

type Refusal = 'limit' | 'floor'

/** Drive `checkOrder` with fixed outcomes per op index; answer the verdict and the indexes checked. */
function drive(
  ops: CounterOp[],
  existing: Set<string>,
  outcomes: Record<number, OpOutcome<Refusal>>,
): { checked: number[]; verdict: OpsVerdict<Refusal> } {
  const checked: number[] = []
  const order = checkOrder<Refusal>(ops, (key) => existing.has(key))
  let step = order.next()
  while (!step.done) {
    checked.push(step.value)
    existing.add(ops[step.value]!.key) // a checked op creates its counter
    step = order.next(outcomes[step.value])
  }
  return { checked, verdict: step.value }
}

const op = (key: string, ifMissing: CounterOp['ifMissing'] = 'create'): CounterOp => ({ key, delta: 1, ifMissing })

describe('checkOrder', () => {
  it('checks every op in order and counts the settles that only replayed', () => {
    const { checked, verdict } = drive([op('a'), op('b'), op('a')], new Set(), { 1: 'replayed' })
    expect(checked).toEqual([0, 1, 2])
    expect(verdict).toEqual({ refused: false, replayedSettles: 1 })
  })

  it('stops at the first refusal', () => {
    const { checked, verdict } = drive([op('a'), op('b'), op('c')], new Set(), { 1: 'limit', 2: 'floor' })
    expect(checked).toEqual([0, 1])
    expect(verdict).toEqual({ refused: true, index: 1, reason: 'limit' })
  })

  it('reports a missing counter only when no other op is refused, and checks no op on it', () => {
    const ops = [op('a'), op('m', 'report'), op('m'), op('b')]
    const fits = drive(ops, new Set(['a', 'b']), {})
    expect(fits.checked).toEqual([0, 3])
    expect(fits.verdict).toEqual({ refused: true, index: 1, reason: 'missing' })
    const refused = drive(ops, new Set(['a', 'b']), { 3: 'floor' })
    expect(refused.verdict).toEqual({ refused: true, index: 3, reason: 'floor' })
  })

  it('asks whether a counter exists as the earlier ops left it', () => {
    // Op 0 creates `m`, so op 1's report-if-missing finds it and is checked.
    const { checked, verdict } = drive([op('m'), op('m', 'report')], new Set(), {})
    expect(checked).toEqual([0, 1])
    expect(verdict).toEqual({ refused: false, replayedSettles: 0 })
  })
})
