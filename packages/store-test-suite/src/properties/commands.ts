import fc from 'fast-check'

/** Ids that look like separators, hash tags, other keys or prototype properties: each is an ordinary id. */
export const PROPERTY_IDS = ['a', 'a:b', 'b', '{a}:usage', '__proto__', 'constructor', 'vip'] as const
export const UNLIMITED_ID = 'vip'

/**
 * Quotas of one run, by index: 0 a constant limit (maybe a TTL), 1 a limit per id (`vip` has
 * none), 2 loaded from a system of record (maybe a TTL), 3 periodic, 4 on a store view that
 * forces consumeAll's saga.
 */
export const PER_ID = 1
export const SAGA = 4
export const QUOTA_COUNT = 5

export type Key = 'k1' | 'k2' | undefined
/** One step of a sequence. */
export type Cmd =
  | { kind: 'consume' | 'refund'; q: number; id: number; cost: number; key: Key }
  | { kind: 'get' | 'reset'; q: number; id: number }
  | { kind: 'set'; q: number; id: number; usage: number }
  | { kind: 'transact'; q: number; id: number; cost: number; fails: boolean; irreversible: boolean; key: Key }
  | { kind: 'consumeAll'; items: { q: number; id: number; cost: number }[]; keyed: boolean }
  | { kind: 'reserve'; q: number; id: number; cost: number; key: Key; holdMs: number }
  | { kind: 'settle'; which: number; commit: boolean; keep: number | undefined }
  | { kind: 'advance'; ms: number }
  /** Move the clock to `before` ms before the periodic quota's next window starts: the next call and its retry straddle a boundary. */
  | { kind: 'edge'; before: number }
  | { kind: 'replay'; back: number }

/** The quotas of one run, drawn before its commands. */
export interface Setup {
  plainLimit: number
  plainTtlMs: number | undefined
  perIdLimits: number[]
  loadedLimit: number
  database: number[]
  loadedTtlMs: number | undefined
  sagaLimit: number
  idempotencyTtlMs: number
}

export function setupArbitrary(clocked: boolean): fc.Arbitrary<Setup> {
  const ttl = clocked ? fc.constantFrom(undefined, 1_000, 60_000) : fc.constantFrom(undefined, 600_000)
  return fc.record({
    plainLimit: fc.integer({ min: 0, max: 8 }),
    plainTtlMs: ttl,
    perIdLimits: fc.array(fc.integer({ min: 0, max: 6 }), {
      minLength: PROPERTY_IDS.length,
      maxLength: PROPERTY_IDS.length,
    }),
    loadedLimit: fc.integer({ min: 0, max: 8 }),
    database: fc.array(fc.integer({ min: 0, max: 8 }), {
      minLength: PROPERTY_IDS.length,
      maxLength: PROPERTY_IDS.length,
    }),
    loadedTtlMs: ttl,
    sagaLimit: fc.integer({ min: 0, max: 8 }),
    idempotencyTtlMs: clocked ? fc.constantFrom(5_000, 86_400_000) : fc.constant(86_400_000),
  })
}

/** The commands a sequence draws from, by weight. One table on purpose (long, but read as a list, one row per command). */
export function commandArbitrary(clocked: boolean): fc.Arbitrary<Cmd> {
  const q = fc.integer({ min: 0, max: QUOTA_COUNT - 1 })
  const id = fc.integer({ min: 0, max: PROPERTY_IDS.length - 1 })
  const cost = fc.integer({ min: 0, max: 4 })
  const key = fc.constantFrom<Key>(undefined, undefined, 'k1', 'k2')
  const commands: fc.WeightedArbitrary<Cmd>[] = [
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('consume' as const), q, id, cost, key }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('refund' as const), q, id, cost, key }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('get' as const, 'reset' as const), q, id }) },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('set' as const), q, id, usage: fc.integer({ min: 0, max: 10 }) }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('transact' as const),
        q,
        id,
        cost,
        fails: fc.boolean(),
        irreversible: fc.boolean(),
        key,
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('consumeAll' as const),
        // Distinct (quota, id) pairs: one item per counter.
        items: fc.uniqueArray(fc.record({ q, id, cost: fc.integer({ min: 0, max: 3 }) }), {
          minLength: 1,
          maxLength: 3,
          selector: (item) => `${item.q}/${item.id}`,
        }),
        keyed: fc.boolean(),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('replay' as const), back: fc.nat({ max: 20 }) }) },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('reserve' as const),
        q,
        id,
        cost,
        key,
        // On a store on real time, holds outlive the run; with a clock, time moves past them.
        holdMs: clocked ? fc.constantFrom(1_000, 30_000) : fc.constant(600_000),
      }),
    },
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('settle' as const),
        which: fc.nat({ max: 20 }),
        commit: fc.boolean(),
        keep: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
      }),
    },
  ]
  if (clocked) {
    const ms = fc.constantFrom(1, 999, 1_000, 2_000, 5_000, 30_000, 60_000, 3_600_000)
    commands.push({ weight: 2, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms }) })
    commands.push({
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('edge' as const), before: fc.constantFrom(1, 10, 500) }),
    })
  }
  return fc.oneof(...commands)
}
