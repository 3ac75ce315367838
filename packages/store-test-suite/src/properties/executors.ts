import { consumeAll, HoldExpiredError, QuotaExceededError } from '@andromeda/core'
import { expect } from 'vitest'
import { windowStartAt } from '../model.js'
import type { Cmd } from './commands.js'
import { expectConsumeAll, expectResult } from './compare.js'
import { atomicPath, looseResetAt as loose, type SequenceRun } from './sequence-run.js'

type CmdOf<K extends Cmd['kind']> = Cmd & { kind: K }
/** Runs one command on the engine and on the model, and checks that they agree. `t` is the time of the step. */
type Executor<K extends Cmd['kind']> = (run: SequenceRun, cmd: CmdOf<K>, label: string, t: number) => Promise<void>

const idempotency = (key: string | undefined) => (key === undefined ? {} : { idempotencyKey: key })

const consumeOrRefund: Executor<'consume' | 'refund'> = async (run, cmd, label, t) => {
  const spec = run.specs[cmd.q]!
  const id = run.ids[cmd.id]!
  const actual = await run.quotas[cmd.q]![cmd.kind](id, cmd.cost, idempotency(cmd.key))
  const expected = run.model[cmd.kind](spec, id, cmd.cost, cmd.key, t)
  expectResult(actual, expected, loose(run, cmd.q), label)
  expect(run.events, `${label}: hooks`).toEqual(run.model.events)
}

const get: Executor<'get'> = async (run, cmd, label, t) => {
  const actual = await run.quotas[cmd.q]!.get(run.ids[cmd.id]!)
  expectResult(actual, run.model.get(run.specs[cmd.q]!, run.ids[cmd.id]!, t), loose(run, cmd.q), label)
  expect(run.events, `${label}: hooks`).toEqual(run.model.events)
}

const set: Executor<'set'> = async (run, cmd, _label, t) => {
  await run.quotas[cmd.q]!.set(run.ids[cmd.id]!, cmd.usage)
  run.model.set(run.specs[cmd.q]!, run.ids[cmd.id]!, cmd.usage, t)
}

const reset: Executor<'reset'> = async (run, cmd, _label, t) => {
  await run.quotas[cmd.q]!.reset(run.ids[cmd.id]!)
  run.model.reset(run.specs[cmd.q]!, run.ids[cmd.id]!, t)
}

const transact: Executor<'transact'> = async (run, cmd, label, t) => {
  const id = run.ids[cmd.id]!
  const failure = new Error('the work failed')
  const work = (result: unknown) => {
    if (cmd.fails) throw failure
    return result
  }
  const outcome = await run.quotas[cmd.q]!.transact(id, cmd.cost, work, {
    ...idempotency(cmd.key),
    irreversible: cmd.irreversible,
  }).then(
    (result) => ({ threw: 'no', result }),
    (error: unknown) => {
      if (error === failure) return { threw: 'fn', result: undefined }
      if (QuotaExceededError.isInstance(error)) return { threw: 'exceeded', result: error.result }
      throw error
    },
  )
  const expected = run.model.transact(run.specs[cmd.q]!, id, cmd.cost, cmd.fails, cmd.irreversible, cmd.key, t)
  expect(outcome.threw, `${label}: outcome`).toBe(expected.exceeded ? 'exceeded' : cmd.fails ? 'fn' : 'no')
  if (outcome.result) expectResult(outcome.result, expected.result, loose(run, cmd.q), label)
  expect(run.events, `${label}: hooks`).toEqual(run.model.events)
}

const consumeAllCmd: Executor<'consumeAll'> = async (run, cmd, label, t) => {
  if (cmd.keyed && !run.allKeys.has(cmd)) run.allKeys.set(cmd, `all-${run.allKeys.size + 1}`)
  const useKey = run.allKeys.get(cmd)
  const atomic = atomicPath(run, cmd.items, useKey)
  const actual = await consumeAll(
    cmd.items.map((item) => ({ quota: run.quotas[item.q]!, id: run.ids[item.id]!, cost: item.cost })),
    idempotency(useKey),
  )
  const items = cmd.items.map((item) => ({ spec: run.specs[item.q]!, id: run.ids[item.id]!, cost: item.cost }))
  const expected = run.model.consumeAll(items, useKey, atomic, t)
  expectConsumeAll(
    actual,
    expected,
    cmd.items.map((item) => loose(run, item.q)),
    `${label} (${atomic ? 'atomic' : 'saga'})`,
  )
}

const reserve: Executor<'reserve'> = async (run, cmd, label, t) => {
  const spec = run.specs[cmd.q]!
  const id = run.ids[cmd.id]!
  const handle = await run.quotas[cmd.q]!.reserve(id, cmd.cost, { holdMs: cmd.holdMs, ...idempotency(cmd.key) })
  const expected = run.model.reserve(spec, id, cmd.cost, cmd.key, cmd.holdMs, t)
  expectResult(handle.result, expected.result, loose(run, cmd.q), label)
  expect(handle.cost, `${label}: units held`).toBe(expected.units)
  expect(run.events, `${label}: hooks`).toEqual(run.model.events)
  run.reservations.push({ handle, model: expected, q: cmd.q })
}

const settle: Executor<'settle'> = async (run, cmd, label, t) => {
  if (run.reservations.length === 0) return
  const { handle, model: hold, q } = run.reservations[cmd.which % run.reservations.length]!
  // A commit keeps at most what was held (more is a bad argument, not a model question).
  const keep = cmd.commit ? Math.min(cmd.keep ?? hold.units, hold.units) : 0
  const actual = await (cmd.commit ? handle.commit(cmd.keep === undefined ? undefined : keep) : handle.release()).then(
    (result) => result,
    (error: unknown) => {
      if (HoldExpiredError.isInstance(error)) return 'expired' as const
      throw error
    },
  )
  const expected = run.model.settle(hold, keep, t, !cmd.commit)
  if (expected === 'expired' || actual === 'expired') expect(actual, `${label}: settle`).toBe(expected)
  else expectResult(actual, expected, loose(run, q), label)
  expect(run.events, `${label}: hooks`).toEqual(run.model.events)
}

const advance: Executor<'advance'> = async (run, cmd) => {
  await run.clock!.advance(cmd.ms)
}

const edge: Executor<'edge'> = async (run, cmd) => {
  // The periodic quota's windows are minutes when the clock moves (see `startRun`).
  const at = run.now()
  let ms = windowStartAt('minute', at) + 60_000 - cmd.before - at
  if (ms <= 0) ms += 60_000
  await run.clock!.advance(ms)
}

/** The table of command executors, one per command kind. A `replay` re-runs an earlier command: `runSequence` picks it. */
const EXECUTORS: { [K in Cmd['kind']]: Executor<K> } = {
  consume: consumeOrRefund,
  refund: consumeOrRefund,
  get,
  set,
  reset,
  transact,
  consumeAll: consumeAllCmd,
  reserve,
  settle,
  advance,
  edge,
  replay: async () => {},
}

/** Run one command: the step's hook calls start empty, and engine and model read the same time. */
export function execute(run: SequenceRun, cmd: Cmd, label: string): Promise<void> {
  run.events.length = 0
  const t = run.now()
  return (EXECUTORS[cmd.kind] as Executor<Cmd['kind']>)(run, cmd, label, t)
}
