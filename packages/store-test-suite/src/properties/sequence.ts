import type { CounterStore } from '@andromeda/core'
import { expect } from 'vitest'
import type { Cmd, Setup } from './commands.js'
import { expectResult } from './compare.js'
import { execute } from './executors.js'
import type { PropertyClock } from './property-options.js'
import { looseResetAt, type SequenceRun, startRun } from './sequence-run.js'

/** Run one random sequence on fresh quotas, each step checked against the model, then sweep every counter. */
export async function runSequence(
  ctx: { store: CounterStore; clock: PropertyClock | undefined },
  setup: Setup,
  commands: Cmd[],
): Promise<void> {
  const run = startRun(ctx.store, ctx.clock, setup)
  const history: Cmd[] = []
  for (const [step, cmd] of commands.entries()) {
    const target = cmd.kind === 'replay' ? replayTarget(history, cmd.back) : cmd
    if (target === undefined) continue
    const label = `step ${step}: ${JSON.stringify(target)}${cmd === target ? '' : ' (replayed)'} at ${run.now()}`
    await execute(run, target, label)
    if (cmd === target && cmd.kind !== 'advance' && cmd.kind !== 'edge') history.push(cmd)
  }
  await finalSweep(run)
}

/** The earlier keyed command a `replay` re-issues (`back` from the newest), or undefined when there is none. */
function replayTarget(history: readonly Cmd[], back: number): Cmd | undefined {
  const keyed = history.filter((c) => ('key' in c && c.key !== undefined) || (c.kind === 'consumeAll' && c.keyed))
  if (keyed.length === 0) return undefined
  return keyed[keyed.length - 1 - (back % keyed.length)]!
}

/** Every (quota, id) agrees with the model, usage never below zero. */
async function finalSweep(run: SequenceRun): Promise<void> {
  const t = run.now()
  for (const [q, spec] of run.specs.entries()) {
    for (const id of run.ids) {
      const actual = await run.quotas[q]!.get(id)
      expectResult(actual, run.model.get(spec, id, t), looseResetAt(run, q), `final get(${spec.name}, ${id})`)
      expect(actual.usage).toBeGreaterThanOrEqual(0)
    }
  }
}
