/** Small pieces the load generators (`pnpm demo`, `pnpm chaos`) share: a seeded PRNG, tallies, a text table, a bounded retry. */
import { setTimeout as sleep } from 'node:timers/promises'

/**
 * Call `attempt` until it resolves, pausing `pauseMs` after each failure. Past `withinMs` the
 * last failure is thrown as `<failed> within N s: <its message>`.
 */
export async function retryWithin<T>(
  failed: string,
  withinMs: number,
  attempt: () => Promise<T>,
  pauseMs = 100,
): Promise<T> {
  const deadline = Date.now() + withinMs
  for (;;) {
    try {
      return await attempt()
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${failed} within ${withinMs / 1000} s: ${(error as Error).message}`)
      await sleep(pauseMs)
    }
  }
}

/** Small seeded PRNG (mulberry32), so a run can be repeated with `--seed`. Returns floats in [0, 1). */
export function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Add `by` to a tally. */
export const bump = (map: Map<string, number>, key: string, by = 1): Map<string, number> =>
  map.set(key, (map.get(key) ?? 0) + by)

/** Sum of a tally. */
export const total = (map: Map<string, number>): number => [...map.values()].reduce((a, b) => a + b, 0)

/** `12 (a 5, b 7)`, or `0`. */
export const tally = (map: Map<string, number>): string =>
  map.size === 0 ? '0' : `${total(map)} (${[...map].map(([k, v]) => `${k} ${v}`).join(', ')})`

/** The p-th percentile of an ascending array (nearest rank); NaN when empty. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

/** A plain text table: first column left-aligned, the others right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: string[]) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}
