import type { HoldTuple, PlannedWrite, StoredEntry } from './backend.js'

type CounterEntry = Extract<StoredEntry, { type: 'counter' }>
export type HoldsEntry = Extract<StoredEntry, { type: 'holds' }>

/**
 * Holds (reservations) on the process-atomic path. A counter's holds are one small entry next to
 * it, `<counter>:holds`, expiring with the counter; the counter says it has one (`held`), so
 * calls that never need the holds never read them. A settled hold leaves `<counter>:settled:<id>`
 * for the hold's `holdMs`. The names are the Redis store's, and every one of them is read and
 * written only under the counter's own lock.
 */
export const holdsKeyOf = (counter: string): string => `${counter}:holds`
export const settledKeyOf = (counter: string, id: string): string => `${counter}:settled:${id}`

/** One hold: its units, when they come back by themselves (epoch ms), its length (ms). */
export interface Hold {
  cost: number
  expiresAt: number
  holdMs: number
}

export function counterEntry(value: number, expiresAt: number | undefined, held: boolean): CounterEntry {
  return {
    type: 'counter',
    value,
    ...(expiresAt === undefined ? {} : { expiresAt }),
    ...(held ? { held: true as const } : {}),
  }
}

/** The holds as a map by id (a Map, so no id can reach an object's prototype). */
export function holdsOf(entry: HoldsEntry | undefined): Map<string, Hold> {
  return new Map((entry?.holds ?? []).map(([id, cost, expiresAt, holdMs]) => [id, { cost, expiresAt, holdMs }]))
}

/** The entry of these holds, living as long as their counter; undefined when there are none. */
export function holdsEntry(
  holds: ReadonlyMap<string, Hold>,
  counterExpiresAt: number | undefined,
): HoldsEntry | undefined {
  if (holds.size === 0) return undefined
  const tuples = [...holds].map(([id, hold]): HoldTuple => [id, hold.cost, hold.expiresAt, hold.holdMs])
  return { type: 'holds', holds: tuples, ...(counterExpiresAt === undefined ? {} : { expiresAt: counterExpiresAt }) }
}

/** What giving back a counter's expired holds leaves. */
export interface Reclaimed {
  /** The counter's value once the expired holds are given back (never below 0). */
  value: number
  /** The holds still live. */
  live: Map<string, Hold>
  /**
   * The writes that give them back (none when nothing was stale): the holds before the counter,
   * so a process that dies in between leaves units held for good rather than given back twice.
   */
  writes: PlannedWrite[]
}

/**
 * Give back the expired holds of a live counter flagged `held`, whose holds entry reads
 * `previous` (undefined: gone, then the flag is cleared).
 */
export function reclaimExpired(
  key: string,
  counter: CounterEntry,
  previous: HoldsEntry | undefined,
  now: number,
): Reclaimed {
  const live = holdsOf(previous)
  let units = 0
  for (const [id, hold] of live) {
    if (hold.expiresAt > now) continue
    units += hold.cost
    live.delete(id)
  }
  if (previous !== undefined && live.size === previous.holds.length) return { value: counter.value, live, writes: [] }
  const value = Math.max(counter.value - units, 0)
  const writes: PlannedWrite[] = []
  if (previous !== undefined)
    writes.push({ key: holdsKeyOf(key), entry: holdsEntry(live, counter.expiresAt), previous })
  writes.push({ key, entry: counterEntry(value, counter.expiresAt, live.size > 0), previous: counter })
  return { value, live, writes }
}
