import type { CounterOp } from '@andromeda/core'
import type { PlannedWrite, StoredEntry } from './backend.js'
import { type Hold, holdsKeyOf, holdsOf as holdsMap, reclaimExpired } from './process-holds.js'

export type EntryOf<K extends StoredEntry['type']> = Extract<StoredEntry, { type: K }>
export type CounterEntry = EntryOf<'counter'>

/** Reads of one critical section: the live entry of a type at `key`, or undefined. */
export type ReadEntry = <K extends StoredEntry['type']>(key: string, type: K) => Promise<EntryOf<K> | undefined>

/** A counter's holds as one call works on them. */
export interface CallHolds {
  /** The holds entry as stored (undefined: none was read). */
  previous: EntryOf<'holds'> | undefined
  /** Live holds, with this call's changes. */
  live: Map<string, Hold>
  changed: boolean
  /** The writes that give back the expired holds: done even when the call is refused. */
  reclaim: PlannedWrite[]
  /** The counter's value right after that give-back. */
  reclaimedValue: number | undefined
  /** Read for a new hold: expired holds are still in `live`, not given back yet. */
  lazy: boolean
}

/** One counter as the ops of a call see it. */
export interface CounterState {
  stored: CounterEntry | undefined
  value: number
  expiresAt: number | undefined
  exists: boolean
  dirty: boolean
  /** Loaded only when an op needs them (a hold, a settle, a refusal for the bound). */
  holds: CallHolds | undefined
  settled: { id: string; holdMs: number }[]
}

/**
 * One `apply` being planned: its reads, the time it runs at, and a scratch copy of each counter
 * it touches, so several ops on one key see each other and a refusal writes nothing.
 */
export class PlanCall {
  readonly states = new Map<string, CounterState>()

  constructor(
    readonly read: ReadEntry,
    readonly ops: readonly CounterOp[],
    readonly now: number,
    private readonly clock: () => number,
    distinct: readonly string[],
    loaded: readonly (CounterEntry | undefined)[],
  ) {
    for (const [i, key] of distinct.entries()) {
      const stored = loaded[i]
      this.states.set(key, {
        stored,
        value: stored?.value ?? 0,
        expiresAt: stored?.expiresAt,
        exists: stored !== undefined,
        dirty: false,
        holds: undefined,
        settled: [],
      })
    }
  }

  state(key: string): CounterState {
    return this.states.get(key)!
  }

  /** Milliseconds left of a lifetime ending at `expiresAt` (at least 1), on the clock as it reads now. */
  ttlOf(expiresAt: number | undefined): number | undefined {
    return expiresAt === undefined ? undefined : Math.max(expiresAt - this.clock(), 1)
  }

  /**
   * The counter's holds for this call. Expired ones are given back only where it matters (as the
   * contract says): before a refusal for the bound, or of a settle whose hold is gone; a new hold
   * and a settle read them `lazy`, keeping expired ones counted, as every other store does.
   */
  async holdsOf(key: string, state: CounterState, lazy = false): Promise<CallHolds> {
    if (state.holds && !(state.holds.lazy && !lazy)) return state.holds
    const stored = state.stored
    if (!stored?.held) {
      // A counter without holds, or created by this call: any holds entry left there is stale.
      state.holds ??= {
        previous: undefined,
        live: new Map(),
        changed: false,
        reclaim: [],
        reclaimedValue: undefined,
        lazy: false,
      }
      return state.holds
    }
    if (state.holds?.lazy) return this.reclaimLazy(key, stored, state, state.holds)
    const previous = await this.read(holdsKeyOf(key), 'holds')
    if (lazy) {
      state.holds = {
        previous,
        live: holdsMap(previous),
        changed: false,
        reclaim: [],
        reclaimedValue: undefined,
        lazy: true,
      }
      return state.holds
    }
    const { value, live, writes } = reclaimExpired(key, stored, previous, this.now)
    state.holds = {
      previous,
      live,
      changed: writes.length > 0,
      reclaim: writes,
      reclaimedValue: writes.length > 0 ? value : undefined,
      lazy: false,
    }
    if (writes.length > 0) {
      state.value = Math.max(state.value - (stored.value - value), 0)
      state.dirty = true
    }
    return state.holds
  }

  /** Holds read for a new hold earlier in this call: give the expired ones back now. */
  private reclaimLazy(key: string, stored: CounterEntry, state: CounterState, holds: CallHolds): CallHolds {
    const { value, writes } = reclaimExpired(key, stored, holds.previous, this.now)
    for (const [id, hold] of holds.live) if (hold.expiresAt <= this.now) holds.live.delete(id)
    holds.lazy = false
    if (writes.length > 0) {
      state.value = Math.max(state.value - (stored.value - value), 0)
      state.dirty = true
      holds.changed = true
      holds.reclaim = writes
      holds.reclaimedValue = value
    }
    return holds
  }
}
