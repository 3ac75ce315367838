/**
 * Measurement helpers. Contenders of one scenario run in alternating rounds (A B C A B C ...)
 * so that drift on a noisy machine hits all of them alike; each figure is the median of the
 * rounds, with the spread (min..max) beside it.
 */

export interface Contender {
  name: string
  /** Prepare state for one round (fresh store, warm connection); returns the op to time. */
  setup(): Promise<(i: number) => Promise<unknown>>
  teardown?(): Promise<void>
}

export interface Figure {
  name: string
  median: number
  min: number
  max: number
  rounds: number[]
}

export interface ScenarioResult {
  scenario: string
  unit: string
  figures: Figure[]
}

/** Run `total` ops with `concurrency` workers; returns ops per second. */
export async function throughput(op: (i: number) => Promise<unknown>, total: number, concurrency: number): Promise<number> {
  let next = 0
  const started = process.hrtime.bigint()
  const worker = async () => {
    while (next < total) await op(next++)
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  return total / seconds
}

export const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Alternate the contenders for `rounds` rounds of `total` ops each (plus one warm-up round). */
export async function compare(
  scenario: string,
  contenders: Contender[],
  options: { rounds: number; total: number; concurrency: number },
): Promise<ScenarioResult> {
  const rounds = new Map(contenders.map((c) => [c.name, [] as number[]]))
  for (let round = -1; round < options.rounds; round++) {
    for (const contender of contenders) {
      const op = await contender.setup()
      const rate = await throughput(op, round < 0 ? Math.min(options.total, 2000) : options.total, options.concurrency)
      await contender.teardown?.()
      if (round >= 0) rounds.get(contender.name)!.push(rate)
    }
  }
  return {
    scenario,
    unit: 'ops/s',
    figures: contenders.map((c) => {
      const values = rounds.get(c.name)!
      return { name: c.name, median: median(values), min: Math.min(...values), max: Math.max(...values), rounds: values }
    }),
  }
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2))

/** A markdown table: each contender's median, spread, and ratio to the first figure (andromeda) and to a named floor. */
export function toMarkdown(result: ScenarioResult, floorName?: string): string {
  const base = result.figures[0]!
  const floor = floorName ? result.figures.find((f) => f.name === floorName) : undefined
  const lines = [
    `**${result.scenario}**`,
    '',
    `| contender | median ${result.unit} | spread | andromeda ÷ this |${floor ? ' this ÷ floor |' : ''}`,
    `|---|---:|---:|---:|${floor ? '---:|' : ''}`,
    ...result.figures.map(
      (f) =>
        `| ${f.name} | ${fmt(f.median)} | ${fmt(f.min)}..${fmt(f.max)} | ${(base.median / f.median).toFixed(2)}x |${
          floor ? ` ${(f.median / floor.median).toFixed(2)}x |` : ''
        }`,
    ),
    '',
  ]
  return lines.join('\n')
}
