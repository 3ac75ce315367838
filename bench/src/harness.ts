/**
 * Measurement helpers. Contenders of one scenario run in alternating rounds (A B C A B C ...)
 * so that drift on a noisy machine hits all of them alike; each figure is the median of the
 * rounds, with the spread (min..max) beside it.
 */

export interface Contender {
  name: string
  /** A string in every key the current round writes (set by `setup`), to tell its commands apart. */
  keyTag?: string
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
  /** Median over the rounds of each round's 99th percentile latency (ms), when measured. */
  p99Ms?: number
}

export interface ScenarioResult {
  scenario: string
  unit: string
  figures: Figure[]
}

/**
 * Run `total` ops with `concurrency` workers; returns ops per second and, when `latency` is
 * set, the 99th percentile of the ops' latencies (ms). Timing each op costs two clock reads,
 * so only the sections whose ops take microseconds (Redis) ask for it.
 */
export async function throughput(
  op: (i: number) => Promise<unknown>,
  total: number,
  concurrency: number,
  latency = false,
): Promise<{ rate: number; p99Ms?: number }> {
  let next = 0
  const latencies = latency ? new Float64Array(total) : undefined
  const started = process.hrtime.bigint()
  const worker = latencies
    ? async () => {
        while (next < total) {
          const i = next++
          const t0 = performance.now()
          await op(i)
          latencies[i] = performance.now() - t0
        }
      }
    : async () => {
        while (next < total) await op(next++)
      }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  if (!latencies) return { rate: total / seconds }
  latencies.sort()
  return { rate: total / seconds, p99Ms: latencies[Math.min(total - 1, Math.floor(total * 0.99))]! }
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
  options: { rounds: number; total: number; concurrency: number; latency?: boolean },
): Promise<ScenarioResult> {
  const rounds = new Map(contenders.map((c) => [c.name, [] as number[]]))
  const p99s = new Map(contenders.map((c) => [c.name, [] as number[]]))
  for (let round = -1; round < options.rounds; round++) {
    for (const contender of contenders) {
      const op = await contender.setup()
      const measured = await throughput(
        op,
        round < 0 ? Math.min(options.total, 2000) : options.total,
        options.concurrency,
        options.latency,
      )
      await contender.teardown?.()
      if (round < 0) continue
      rounds.get(contender.name)!.push(measured.rate)
      if (measured.p99Ms !== undefined) p99s.get(contender.name)!.push(measured.p99Ms)
    }
  }
  return {
    scenario,
    unit: 'ops/s',
    figures: contenders.map((c) => {
      const values = rounds.get(c.name)!
      const p99 = p99s.get(c.name)!
      const figure: Figure = {
        name: c.name,
        median: median(values),
        min: Math.min(...values),
        max: Math.max(...values),
        rounds: values,
      }
      if (p99.length > 0) figure.p99Ms = median(p99)
      return figure
    }),
  }
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2))

/** A markdown table: each contender's median, spread, p99 when measured, and ratio to the first figure (andromeda) and to a named floor. */
export function toMarkdown(result: ScenarioResult, floorName?: string): string {
  const base = result.figures[0]!
  const floor = floorName ? result.figures.find((f) => f.name === floorName) : undefined
  const latency = result.figures.some((f) => f.p99Ms !== undefined)
  const lines = [
    `**${result.scenario}**`,
    '',
    `| contender | median ${result.unit} | spread |${latency ? ' p99 ms |' : ''} andromeda ÷ this |${floor ? ' this ÷ floor |' : ''}`,
    `|---|---:|---:|${latency ? '---:|' : ''}---:|${floor ? '---:|' : ''}`,
    ...result.figures.map(
      (f) =>
        `| ${f.name} | ${fmt(f.median)} | ${fmt(f.min)}..${fmt(f.max)} |${latency ? ` ${f.p99Ms?.toFixed(2) ?? '—'} |` : ''} ${(base.median / f.median).toFixed(2)}x |${
          floor ? ` ${(f.median / floor.median).toFixed(2)}x |` : ''
        }`,
    ),
    '',
  ]
  return lines.join('\n')
}
