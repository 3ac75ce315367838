import { lockKey } from '@andromeda/core/store'
import { LRUCache } from 'lru-cache'

/** Why a live entry left the store without being deleted: only `'evict'` (the store was full). */
export interface MemoryEvictionEvent {
  key: string
  /** What was evicted: a counter (with its holds), an idempotency record or a loader lock. */
  kind: 'counter' | 'record' | 'lock'
  /** The counter's value when a counter was evicted. */
  value?: number
}

/**
 * A counter changed in place, so a consume is one lru-cache lookup (`get`, which also marks it
 * recently used) instead of three (`get`, `set`, `getRemainingTTL`): the memory store's hot
 * path. Every counter without a TTL is one, with a single field so it costs 32 bytes of heap
 * (the footprint target is 1.25x a bare lru-cache of numbers); a counter with a TTL is kept as
 * a plain number. Either becomes a `HeldCounter` when it first holds units.
 */
export class Counter {
  constructor(public value: number) {}

  /** lru-cache keeps a TTL for this entry. */
  get hasTtl(): boolean {
    return false
  }
}

/**
 * A counter with holds: they live in its entry, so they expire and are evicted with it and
 * cost no entry of their own.
 */
export class HeldCounter extends Counter {
  /** Holds by id. */
  readonly holds = new Map<string, Hold>()
  /** Settled holds by id, with when their mark lapses: settling one again replays until then. */
  settled: Map<string, number> | undefined = undefined
  /** Size of `settled` at which lapsed marks are next swept (doubling: amortized O(1) a settle). */
  sweepAt = 64

  constructor(
    value: number,
    private readonly ttl: boolean,
  ) {
    super(value)
  }

  override get hasTtl(): boolean {
    return this.ttl
  }
}

/** One hold of a counter: its units, when it comes back by itself, and how long it was made for. */
export interface Hold {
  cost: number
  expiresAt: number
  holdMs: number
}

export interface RecordEntry {
  kind: 'record'
  values: number[]
  ttlMs: (number | undefined)[]
  recordedAt: number
}
interface LockEntry {
  kind: 'lock'
  token: string
}
type Entry = number | Counter | RecordEntry | LockEntry

/** Below this many entries nothing is purged. */
const PURGE_FLOOR = 1024

/**
 * Every entry of a memory store, on one lru-cache: counters, idempotency records, loader
 * locks and holds share its bound, its recency and its clock.
 */
export class Entries {
  private readonly cache: LRUCache<string, Entry>
  /**
   * Size at which expired entries are next purged. lru-cache drops an expired entry only when
   * it is read or evicted; one-off ids and past windows would otherwise stay until the store is
   * full. Purging when the size doubled since the last purge costs amortized O(1) an insert and
   * keeps the store within twice its live entries (plus `PURGE_FLOOR`).
   */
  private purgeAt = PURGE_FLOOR

  constructor(
    max: number,
    /** Epoch ms: TTLs and holds are measured on it (no timers). */
    readonly clock: () => number,
    onEvict: (event: MemoryEvictionEvent) => void,
  ) {
    // lru-cache keeps each entry's TTL against our clock (no timers: `ttlResolution: 0` reads the
    // clock on every check, `ttlAutopurge` stays off) and never re-arms it (`noUpdateTTL`).
    // It treats a start time of 0 as "no TTL" and an entry as stale once its age *exceeds* the
    // TTL, where Redis expires a key when its age *reaches* it. Reading our clock + 2 and starting
    // each entry at clock + 1 keeps starts non-zero for any clock >= 0 and turns lru-cache's
    // `age + 1 > ttl` into Redis' `age >= ttl`.
    const cache: LRUCache<string, Entry> = new LRUCache<string, Entry>({
      max,
      perf: { now: () => clock() + 2 },
      ttlResolution: 0,
      noUpdateTTL: true,
      noDisposeOnSet: true,
      dispose: (entry, key, reason) => {
        // During eviction the entry is still indexed, so its remaining TTL tells live from expired.
        if (reason !== 'evict' || cache.getRemainingTTL(key) <= 0) return
        if (typeof entry === 'number') onEvict({ key, kind: 'counter', value: entry })
        else if (entry instanceof Counter) onEvict({ key, kind: 'counter', value: entry.value })
        else onEvict({ key, kind: entry.kind })
      },
    })
    this.cache = cache
  }

  private withTtl(ttl: number) {
    if (this.cache.size >= this.purgeAt) this.purge()
    return { ttl, start: this.clock() + 1 }
  }

  /** Drop every expired entry (silently: `dispose` reports evictions only). */
  private purge(): void {
    this.cache.purgeStale()
    this.purgeAt = Math.max(PURGE_FLOOR, this.cache.size * 2)
  }

  /** Entries held, expired ones not yet purged included. */
  get size(): number {
    return this.cache.size
  }

  // ------------------------------------------------------------------ counters

  /** The live counter at `key` (a `Counter` or a number), marked recently used; undefined when missing. */
  entry(key: string): Counter | number | undefined {
    const entry = this.cache.get(key)
    return typeof entry === 'number' || entry instanceof Counter ? entry : undefined
  }

  /** A live counter's value; undefined when missing or expired. */
  value(key: string): number | undefined {
    const entry = this.entry(key)
    return entry instanceof Counter ? entry.value : entry
  }

  /** Create a counter: boxed without a TTL, a number with one (see `Counter`). */
  create(key: string, value: number, ttlMs: number | undefined): void {
    if (ttlMs === undefined) this.cache.set(key, new Counter(value))
    else this.cache.set(key, value, this.withTtl(ttlMs))
  }

  /** Change a live counter's value; it keeps its lifetime. */
  update(key: string, value: number): void {
    const entry = this.cache.peek(key)
    if (entry instanceof Counter) entry.value = value
    else this.cache.set(key, value)
  }

  /** Remaining lifetime in ms (at least 1 while live); undefined when missing or never expiring. */
  ttlOf(key: string): number | undefined {
    if (!this.cache.has(key)) return undefined
    return this.liveTtlOf(key)
  }

  /** `ttlOf` for a key known to be live (one lookup fewer). */
  liveTtlOf(key: string): number | undefined {
    const remaining = this.cache.getRemainingTTL(key)
    return remaining === Number.POSITIVE_INFINITY ? undefined : remaining + 1
  }

  delete(key: string): void {
    this.cache.delete(key)
  }

  clear(): void {
    this.cache.clear()
  }

  // ------------------------------------------------------------------ holds

  /** True when the counter has holds (live or expired, not yet given back). */
  hasHolds(counter: string): boolean {
    const entry = this.cache.peek(counter)
    return entry instanceof HeldCounter && entry.holds.size > 0
  }

  hold(counter: string, id: string): Hold | undefined {
    const entry = this.cache.peek(counter)
    return entry instanceof HeldCounter ? entry.holds.get(id) : undefined
  }

  /** Add a hold to a live counter, which becomes a `HeldCounter` first (keeping its value and TTL). */
  addHold(counter: string, id: string, hold: Hold): void {
    let entry = this.cache.peek(counter)
    if (typeof entry === 'number' || (entry instanceof Counter && !(entry instanceof HeldCounter))) {
      const held = typeof entry === 'number' ? new HeldCounter(entry, true) : new HeldCounter(entry.value, false)
      this.cache.set(counter, held) // an existing key keeps its TTL (noUpdateTTL)
      entry = held
    }
    if (!(entry instanceof HeldCounter)) return
    entry.holds.set(id, hold)
  }

  /** Take a settled hold out, and remember it for its `holdMs` so settling it again replays. */
  settleHold(counter: string, id: string): void {
    const entry = this.cache.peek(counter)
    const hold = entry instanceof HeldCounter ? entry.holds.get(id) : undefined
    if (!(entry instanceof HeldCounter) || !hold) return
    entry.holds.delete(id)
    const now = this.clock()
    entry.settled ??= new Map()
    if (entry.settled.size >= entry.sweepAt) {
      for (const [settledId, until] of entry.settled) if (until <= now) entry.settled.delete(settledId)
      entry.sweepAt = Math.max(64, entry.settled.size * 2)
    }
    entry.settled.set(id, now + hold.holdMs)
  }

  wasSettled(counter: string, id: string): boolean {
    const entry = this.cache.peek(counter)
    const until = entry instanceof HeldCounter ? entry.settled?.get(id) : undefined
    return until !== undefined && until > this.clock()
  }

  /** Take out the counter's expired holds; returns their units (to give back). */
  takeExpiredHolds(counter: string): number {
    const entry = this.cache.peek(counter)
    const holds = entry instanceof HeldCounter ? entry.holds : undefined
    if (!holds) return 0
    const now = this.clock()
    let units = 0
    for (const [id, hold] of holds) {
      if (hold.expiresAt > now) continue
      units += hold.cost
      holds.delete(id)
    }
    return units
  }

  // ------------------------------------------------------------------ records and locks

  record(key: string): RecordEntry | undefined {
    const entry = this.cache.get(key)
    return typeof entry === 'object' && !(entry instanceof Counter) && entry.kind === 'record' ? entry : undefined
  }

  setRecord(key: string, record: RecordEntry, ttlMs: number): void {
    this.cache.set(key, record, this.withTtl(ttlMs))
  }

  lockHolder(key: string): string | undefined {
    const entry = this.cache.get(key)
    return typeof entry === 'object' && !(entry instanceof Counter) && entry.kind === 'lock' ? entry.token : undefined
  }

  setLock(key: string, token: string, ttlMs: number): void {
    this.cache.set(key, { kind: 'lock', token }, this.withTtl(ttlMs))
  }

  /** A give-back met the missing `counter`: a load in progress may have read before it (see `CounterOp`). */
  revokeLoad(counter: string): void {
    const lock = lockKey(counter)
    if (this.lockHolder(lock) !== undefined) this.cache.delete(lock)
  }
}
