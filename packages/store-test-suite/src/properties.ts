import {
  type CounterOp,
  type CounterStore,
  HoldExpiredError,
  InvalidArgumentError,
  type Quota,
  QuotaExceededError,
  type QuotaHooks,
  type QuotaResult,
  type Reservation,
  consumeAll,
  counterKey,
  createQuota,
  wrapStore,
} from '@andromeda/core'
import { hashTagGroup, idempotencyKey } from '@andromeda/core/store'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  type ModelConsumeAllResult,
  type ModelHold,
  type ModelState,
  type ModelPeriod,
  type ModelQuotaSpec,
  type ModelResult,
  QuotaModel,
  windowStartAt,
} from './model.js'
import { type ConformanceOptions, randomName, sagaOnly, withStore } from './options.js'

/**
 * A clock the suite can move. Hand the same clock to the store (its expiry clock) and to the
 * suite: the engine is given `now()` too, so periods and TTLs can be crossed without waiting.
 */
export interface PropertyClock {
  now(): number
  advance(ms: number): void | Promise<void>
}

/** A clock that only moves when told to. */
export function createManualClock(startAt = Date.UTC(2026, 0, 1)): PropertyClock {
  let now = startAt
  return {
    now: () => now,
    advance(ms) {
      now += ms
    },
  }
}

/** Options of `runStoreProperties`: those of the conformance suite, plus run control. */
export interface PropertyOptions<S extends CounterStore = CounterStore> extends ConformanceOptions<S> {
  /**
   * Runs per property (default: `ANDROMEDA_PROPERTY_RUNS` from the environment, else 200 for
   * the model and 100 for the others). Each run is a fresh random sequence on fresh quota names.
   */
  numRuns?: number
  /**
   * The clock the store reads (and the engine is given). With it, sequences also move time
   * past TTLs, idempotency records and period windows. Without it (a store on real time, such
   * as Redis), time never moves during a run: TTLs are long and time commands are left out.
   */
  clock?: PropertyClock
  /** fast-check seed, to replay a failure. Default: `ANDROMEDA_PROPERTY_SEED` from the environment, else random (printed on failure). */
  seed?: number
}

/** Ids that look like separators, hash tags, other keys or prototype properties: each is an ordinary id. */
export const PROPERTY_IDS = ['a', 'a:b', 'b', '{a}:usage', '__proto__', 'constructor', 'vip'] as const
const UNLIMITED_ID = 'vip'

/**
 * Quotas of one run, by index: 0 a constant limit (maybe a TTL), 1 a limit per id (`vip` has
 * none), 2 loaded from a system of record (maybe a TTL), 3 periodic, 4 on a store view that
 * forces consumeAll's saga.
 */
const PER_ID = 1
const SAGA = 4
const QUOTA_COUNT = 5

// ------------------------------------------------------------------ commands

type Key = 'k1' | 'k2' | undefined
type Cmd =
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

interface Setup {
  plainLimit: number
  plainTtlMs: number | undefined
  perIdLimits: number[]
  loadedLimit: number
  database: number[]
  loadedTtlMs: number | undefined
  sagaLimit: number
  idempotencyTtlMs: number
}

function setupArbitrary(clocked: boolean): fc.Arbitrary<Setup> {
  const ttl = clocked ? fc.constantFrom(undefined, 1_000, 60_000) : fc.constantFrom(undefined, 600_000)
  return fc.record({
    plainLimit: fc.integer({ min: 0, max: 8 }),
    plainTtlMs: ttl,
    perIdLimits: fc.array(fc.integer({ min: 0, max: 6 }), { minLength: PROPERTY_IDS.length, maxLength: PROPERTY_IDS.length }),
    loadedLimit: fc.integer({ min: 0, max: 8 }),
    database: fc.array(fc.integer({ min: 0, max: 8 }), { minLength: PROPERTY_IDS.length, maxLength: PROPERTY_IDS.length }),
    loadedTtlMs: ttl,
    sagaLimit: fc.integer({ min: 0, max: 8 }),
    idempotencyTtlMs: clocked ? fc.constantFrom(5_000, 86_400_000) : fc.constant(86_400_000),
  })
}

function commandArbitrary(clocked: boolean): fc.Arbitrary<Cmd> {
  const q = fc.integer({ min: 0, max: QUOTA_COUNT - 1 })
  const id = fc.integer({ min: 0, max: PROPERTY_IDS.length - 1 })
  const cost = fc.integer({ min: 0, max: 4 })
  const key = fc.constantFrom<Key>(undefined, undefined, 'k1', 'k2')
  const commands: fc.WeightedArbitrary<Cmd>[] = [
    { weight: 6, arbitrary: fc.record({ kind: fc.constant('consume' as const), q, id, cost, key }) },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant('refund' as const), q, id, cost, key }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('get' as const, 'reset' as const), q, id }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('set' as const), q, id, usage: fc.integer({ min: 0, max: 10 }) }) },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('transact' as const), q, id, cost, fails: fc.boolean(), irreversible: fc.boolean(), key }),
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
    commands.push({ weight: 2, arbitrary: fc.record({ kind: fc.constant('edge' as const), before: fc.constantFrom(1, 10, 500) }) })
  }
  return fc.oneof(...commands)
}

// ------------------------------------------------------------------ store views

/** The same store, with every call started when fast-check's scheduler says so. */
function scheduled(store: CounterStore, s: fc.Scheduler): CounterStore {
  return wrapStore(store, {
    call: (method, args, invoke) => {
      const label = method === 'apply' ? `apply ${(args[0] as CounterOp[]).map((op) => op.delta).join(',')}` : method
      return s.schedule(Promise.resolve(), label).then(invoke)
    },
  })
}

// ------------------------------------------------------------------ comparison

/**
 * Compare an engine answer with the model's. Without clock control the store's expiry runs on
 * real time, so a TTL-based `resetAt` is compared for presence only (`looseResetAt`); period
 * ends are exact. A refusal may leave out `resetAt` when the store cannot tell it cheaply (the
 * contract allows it).
 */
function expectResult(actual: unknown, expected: ModelResult | ModelState, looseResetAt: boolean, label: string) {
  const want: Record<string, unknown> = { ...expected }
  const got = actual as Record<string, unknown> | undefined
  if ('allowed' in expected && !expected.allowed && got?.resetAt === undefined) delete want.resetAt
  if (looseResetAt && typeof want.resetAt === 'number') want.resetAt = expect.any(Number)
  expect(actual, label).toEqual(want)
}

function expectConsumeAll(actual: unknown, expected: ModelConsumeAllResult, looseResetAt: boolean[], label: string) {
  const got = actual as { allowed: boolean; results: QuotaResult[]; refused?: unknown; replayed?: boolean }
  expect(got.allowed, `${label}: allowed`).toBe(expected.allowed)
  expect(got.refused, `${label}: refused`).toEqual(expected.refused)
  expect(got.replayed, `${label}: replayed`).toBe(expected.replayed)
  expect(got.results.length, `${label}: results`).toBe(expected.results.length)
  expected.results.forEach((want, i) => {
    if (expected.allowed || i === expected.refused?.index || want.status === 'unlimited') {
      expectResult(got.results[i], want, looseResetAt[i]!, `${label}: results[${i}]`)
    } else {
      // Items other than the refused one: not granted, counted against their own limit, and
      // saying whether they were rolled back or never tried.
      expect(got.results[i], `${label}: results[${i}]`).toMatchObject({ status: 'refused', allowed: false, limit: want.limit, reason: want.reason })
    }
  })
}

// ------------------------------------------------------------------ one run

interface RunContext {
  store: CounterStore
  clock: PropertyClock | undefined
}

async function runSequence(ctx: RunContext, setup: Setup, commands: Cmd[]): Promise<void> {
  const { store, clock } = ctx
    // Without clock control the engine's clock is frozen at the start of today's UTC day: period
  // counters then live about a day of real time and never expire during a run.
  const frozenAt = windowStartAt('day', Date.now())
  const now = () => (clock ? clock.now() : frozenAt)
  const period: ModelPeriod = clock ? 'minute' : 'day'
  const ids = PROPERTY_IDS as readonly string[]
  const prefix = randomName('p')

  const specs: ModelQuotaSpec[] = [
    { name: `${prefix}-plain`, limit: () => setup.plainLimit, ttlMs: setup.plainTtlMs, idempotencyTtlMs: setup.idempotencyTtlMs },
    {
      name: `${prefix}-per:id`,
      limit: (id) => (id === UNLIMITED_ID ? null : setup.perIdLimits[ids.indexOf(id)]!),
      idempotencyTtlMs: 86_400_000,
    },
    {
      name: `${prefix}-{loaded}`,
      limit: () => setup.loadedLimit,
      loadUsage: (id) => setup.database[ids.indexOf(id)]!,
      ttlMs: setup.loadedTtlMs,
      idempotencyTtlMs: 86_400_000,
    },
    { name: `${prefix}-periodic`, limit: () => 3, period, idempotencyTtlMs: 86_400_000 },
    // Named so that, were ':' not escaped in keys, its id 'b' would share a counter with plain's 'a:b'.
    { name: `${prefix}-plain:a`, limit: () => setup.sagaLimit, idempotencyTtlMs: setup.idempotencyTtlMs },
  ]

  const events: string[] = []
  const hooks: QuotaHooks = {
    onConsume: (e) => void events.push(`onConsume:${e.id}:${e.cost}:${e.result.allowed}`),
    onRefund: (e) => void events.push(`onRefund:${e.id}:${e.cost}:${e.result.allowed}`),
    onExceeded: (e) => void events.push(`onExceeded:${e.id}:${e.cost}:${e.result.allowed}`),
    onLoad: (e) => void events.push(`onLoad:${e.id}:${e.usage}`),
    onCompensate: (e) => void events.push(`onCompensate:${e.id}:${e.cost}`),
  }
  const sagaStore = sagaOnly(store)
  const quotas: Quota[] = specs.map((spec, i) =>
    createQuota({
      name: spec.name,
      store: i === SAGA ? sagaStore : store,
      limit: spec.loadUsage || i === PER_ID ? async (id) => spec.limit(id) : spec.limit(ids[0]!),
      ...(spec.loadUsage ? { loadUsage: async (id: string) => spec.loadUsage!(id) } : {}),
      ...(spec.ttlMs === undefined ? {} : { ttlMs: spec.ttlMs }),
      ...(spec.period ? { period: spec.period } : {}),
      idempotencyTtlMs: spec.idempotencyTtlMs,
      clock: now,
      hooks,
    }),
  )

  const model = new QuotaModel()
  const history: Cmd[] = []
  /** Every reservation made so far, with the model's view of it: settle commands pick one. */
  const reservations: { handle: Reservation; model: ModelHold; q: number }[] = []
  /** Idempotency keys given to keyed consumeAll commands, so a replay re-issues the same key. */
  const allKeys = new Map<Cmd, string>()
  /** Without clock control, a TTL's reset time is compared for presence only. */
  const loose = (q: number) => clock === undefined && specs[q]!.period === undefined

  /** Whether the engine will take the single atomic apply for these items (else the saga). */
  const atomicPath = (items: { q: number; id: number }[], key: string | undefined) => {
    const counted = items.filter((item) => specs[item.q]!.limit(ids[item.id]!) !== null)
    if (counted.length === 0 || counted.some((item) => item.q === SAGA)) return false
    const keys = counted.map((item) => {
      const spec = specs[item.q]!
      return counterKey(
        spec.name,
        ids[item.id]!,
        spec.period ? { period: spec.period, startAt: windowStartAt(spec.period, now()) } : spec.ttlMs === undefined ? undefined : 'ttl',
      )
    })
    const first = counted[0]!
    const record = idempotencyKey(hashTagGroup(specs[first.q]!.name, ids[first.id]!), 'all', key ?? '')
    return store.capabilities.canApplyTogether(key === undefined ? keys : [...keys, record])
  }

  const execute = async (cmd: Cmd, label: string): Promise<void> => {
    events.length = 0
    const t = now()
    switch (cmd.kind) {
      case 'consume':
      case 'refund': {
        const spec = specs[cmd.q]!
        const id = ids[cmd.id]!
        const options = cmd.key === undefined ? {} : { idempotencyKey: cmd.key }
        const actual = await quotas[cmd.q]![cmd.kind](id, cmd.cost, options)
        const expected = model[cmd.kind](spec, id, cmd.cost, cmd.key, t)
        expectResult(actual, expected, loose(cmd.q), label)
        expect(events, `${label}: hooks`).toEqual(model.events)
        return
      }
      case 'get': {
        const actual = await quotas[cmd.q]!.get(ids[cmd.id]!)
        expectResult(actual, model.get(specs[cmd.q]!, ids[cmd.id]!, t), loose(cmd.q), label)
        expect(events, `${label}: hooks`).toEqual(model.events)
        return
      }
      case 'set':
        await quotas[cmd.q]!.set(ids[cmd.id]!, cmd.usage)
        model.set(specs[cmd.q]!, ids[cmd.id]!, cmd.usage, t)
        return
      case 'reset':
        await quotas[cmd.q]!.reset(ids[cmd.id]!)
        model.reset(specs[cmd.q]!, ids[cmd.id]!, t)
        return
      case 'transact': {
        const id = ids[cmd.id]!
        const failure = new Error('the work failed')
        const outcome = await quotas[cmd.q]!.transact(
          id,
          cmd.cost,
          (result) => {
            if (cmd.fails) throw failure
            return result
          },
          { ...(cmd.key === undefined ? {} : { idempotencyKey: cmd.key }), irreversible: cmd.irreversible },
        ).then(
          (result) => ({ threw: 'no', result }),
          (error: unknown) => {
            if (error === failure) return { threw: 'fn', result: undefined }
            if (QuotaExceededError.isInstance(error)) return { threw: 'exceeded', result: error.result }
            throw error
          },
        )
        const expected = model.transact(specs[cmd.q]!, id, cmd.cost, cmd.fails, cmd.irreversible, cmd.key, t)
        expect(outcome.threw, `${label}: outcome`).toBe(expected.exceeded ? 'exceeded' : cmd.fails ? 'fn' : 'no')
        if (outcome.result) expectResult(outcome.result, expected.result, loose(cmd.q), label)
        expect(events, `${label}: hooks`).toEqual(model.events)
        return
      }
      case 'consumeAll': {
        if (cmd.keyed && !allKeys.has(cmd)) allKeys.set(cmd, `all-${allKeys.size + 1}`)
        const useKey = allKeys.get(cmd)
        const atomic = atomicPath(cmd.items, useKey)
        const actual = await consumeAll(
          cmd.items.map((item) => ({ quota: quotas[item.q]!, id: ids[item.id]!, cost: item.cost })),
          useKey === undefined ? {} : { idempotencyKey: useKey },
        )
        const expected = model.consumeAll(
          cmd.items.map((item) => ({ spec: specs[item.q]!, id: ids[item.id]!, cost: item.cost })),
          useKey,
          atomic,
          t,
        )
        expectConsumeAll(actual, expected, cmd.items.map((item) => loose(item.q)), `${label} (${atomic ? 'atomic' : 'saga'})`)
        return
      }
      case 'reserve': {
        const spec = specs[cmd.q]!
        const id = ids[cmd.id]!
        const handle = await quotas[cmd.q]!.reserve(id, cmd.cost, { holdMs: cmd.holdMs, ...(cmd.key === undefined ? {} : { idempotencyKey: cmd.key }) })
        const expected = model.reserve(spec, id, cmd.cost, cmd.key, cmd.holdMs, t)
        expectResult(handle.result, expected.result, loose(cmd.q), label)
        expect(handle.cost, `${label}: units held`).toBe(expected.units)
        expect(events, `${label}: hooks`).toEqual(model.events)
        reservations.push({ handle, model: expected, q: cmd.q })
        return
      }
      case 'settle': {
        if (reservations.length === 0) return
        const { handle, model: hold, q } = reservations[cmd.which % reservations.length]!
        // A commit keeps at most what was held (more is a bad argument, not a model question).
        const keep = cmd.commit ? Math.min(cmd.keep ?? hold.units, hold.units) : 0
        const actual = await (cmd.commit ? handle.commit(cmd.keep === undefined ? undefined : keep) : handle.release()).then(
          (result) => result,
          (error: unknown) => {
            if (HoldExpiredError.isInstance(error)) return 'expired' as const
            throw error
          },
        )
        const expected = model.settle(hold, keep, t, !cmd.commit)
        if (expected === 'expired' || actual === 'expired') expect(actual, `${label}: settle`).toBe(expected)
        else expectResult(actual, expected, loose(q), label)
        expect(events, `${label}: hooks`).toEqual(model.events)
        return
      }
      case 'advance':
        await clock!.advance(cmd.ms)
        return
      case 'edge': {
        // The periodic quota's windows are minutes when the clock moves (see `period`).
        const at = now()
        let ms = windowStartAt('minute', at) + 60_000 - cmd.before - at
        if (ms <= 0) ms += 60_000
        await clock!.advance(ms)
        return
      }
      case 'replay':
        return
    }
  }

  for (const [step, cmd] of commands.entries()) {
    let target = cmd
    if (cmd.kind === 'replay') {
      const keyed = history.filter(
        (c) => ('key' in c && c.key !== undefined) || (c.kind === 'consumeAll' && c.keyed),
      )
      if (keyed.length === 0) continue
      target = keyed[keyed.length - 1 - (cmd.back % keyed.length)]!
    }
    const label = `step ${step}: ${JSON.stringify(target)}${cmd === target ? '' : ' (replayed)'} at ${now()}`
    await execute(target, label)
    if (cmd === target && cmd.kind !== 'advance' && cmd.kind !== 'edge') history.push(cmd)
  }

  // Final sweep: every (quota, id) agrees with the model, usage never below zero.
  const t = now()
  for (const [q, spec] of specs.entries()) {
    for (const id of ids) {
      const actual = await quotas[q]!.get(id)
      expectResult(actual, model.get(spec, id, t), loose(q), `final get(${spec.name}, ${id})`)
      expect(actual.usage).toBeGreaterThanOrEqual(0)
    }
  }
}

// ------------------------------------------------------------------ concurrency

interface ConcurrentOp {
  kind: 'consume' | 'refund' | 'consumeAll'
  id: number
  cost: number
}

/**
 * Fire `ops` at once through a store whose calls are started in an order chosen by fast-check,
 * then check the ledger: for each counter, usage == loaded + granted - refunded, within
 * [0, limit], and every refusal was justified at the moment it was taken.
 */
async function runConcurrent(
  store: CounterStore,
  s: fc.Scheduler,
  setup: { limit: number; otherLimit: number; loaded: number | null; saga: boolean },
  ops: ConcurrentOp[],
): Promise<void> {
  const view = scheduled(store, s)
  const loaded = setup.loaded === null ? null : Math.min(setup.loaded, setup.limit)
  const ids = ['x', 'y']
  const ledger = new Map<string, number>()
  const add = (quota: string, id: string, delta: number) => ledger.set(`${quota}/${id}`, (ledger.get(`${quota}/${id}`) ?? 0) + delta)
  // Refunds give back only units already granted (as a caller would): a refund of units that
  // nobody was granted could take those a consumeAll saga holds, and its give-back would then
  // stop at zero, which no ledger could follow. What a refund may take is counted when the
  // refund starts, so two refunds in flight never take the same units.
  const refundable = new Map<string, number>()
  const granted = (id: string, cost: number) => refundable.set(id, (refundable.get(id) ?? 0) + cost)
  const hooks = (name: () => string): QuotaHooks => ({
    onCompensate: (e) => {
      if (e.result && !e.result.allowed) add(name(), e.id, e.cost)
    },
  })
  const a: Quota = createQuota({
    name: randomName('ca'),
    store: view,
    limit: setup.limit,
    ...(loaded === null ? {} : { loadUsage: s.scheduleFunction(async () => loaded) }),
    lock: { retryDelayMs: 1, retries: 1000 },
    hooks: hooks(() => a.name),
  })
  // On a view of its own, b makes consumeAll([a, b]) take the saga; on the same view, one apply.
  const b: Quota = createQuota({
    name: randomName('cb'),
    store: setup.saga ? sagaOnly(view) : view,
    limit: setup.otherLimit,
    hooks: hooks(() => b.name),
  })

  const check = (r: QuotaResult, limit: number, cost: number, kind: 'consume' | 'refund', label: string) => {
    expect(r.usage, label).toBeGreaterThanOrEqual(0)
    if (r.allowed && kind === 'consume') expect(r.usage, label).toBeLessThanOrEqual(limit)
    if (r.reason === 'limit') expect(r.usage + cost, label).toBeGreaterThan(limit)
    // A refund on a missing counter is refused with floor at usage 0, whatever its cost.
    if (r.reason === 'floor' && r.usage > 0) expect(r.usage, label).toBeLessThan(cost)
  }

  const run = async (op: ConcurrentOp, i: number) => {
    const id = ids[op.id]!
    const label = `op ${i}: ${JSON.stringify(op)}`
    if (op.kind === 'consumeAll') {
      const r = await consumeAll([
        { quota: a, id, cost: op.cost },
        { quota: b, id, cost: op.cost },
      ])
      if (r.allowed) {
        add(a.name, id, op.cost)
        add(b.name, id, op.cost)
        granted(id, op.cost)
      }
      // The refused item was over its limit; the others were merely not granted.
      if (r.allowed || r.refused?.index === 0) check(r.results[0]!, setup.limit, op.cost, 'consume', label)
      if (r.allowed || r.refused?.index === 1) check(r.results[1]!, setup.otherLimit, op.cost, 'consume', label)
      return
    }
    if (op.kind === 'refund') {
      // Only units granted already (the loaded usage counts as granted).
      if ((refundable.get(id) ?? 0) + (loaded ?? 0) < op.cost) return
      granted(id, -op.cost)
    }
    const r = await a[op.kind](id, op.cost)
    if (r.allowed) add(a.name, id, op.kind === 'consume' ? op.cost : -op.cost)
    else if (op.kind === 'refund') granted(id, op.cost)
    if (r.allowed && op.kind === 'consume') granted(id, op.cost)
    check(r, setup.limit, op.cost, op.kind, label)
  }

  await s.waitFor(Promise.all(ops.map(run)))

  for (const id of ids) {
    const usageA = (await s.waitFor(a.get(id))).usage
    expect(usageA, `usage of ${a.name}/${id}`).toBe((loaded ?? 0) + (ledger.get(`${a.name}/${id}`) ?? 0))
    expect(usageA).toBeGreaterThanOrEqual(0)
    expect(usageA).toBeLessThanOrEqual(setup.limit)
    const usageB = (await s.waitFor(b.get(id))).usage
    expect(usageB, `usage of ${b.name}/${id}`).toBe(ledger.get(`${b.name}/${id}`) ?? 0)
    expect(usageB).toBeLessThanOrEqual(setup.otherLimit)
  }
}

// ------------------------------------------------------------------ the suite

function runsOf(options: PropertyOptions, fallback: number): number {
  if (options.numRuns !== undefined) return options.numRuns
  const fromEnv = Number(process.env.ANDROMEDA_PROPERTY_RUNS)
  return Number.isSafeInteger(fromEnv) && fromEnv > 0 ? fromEnv : fallback
}

function seedOf(options: PropertyOptions): number | undefined {
  if (options.seed !== undefined) return options.seed
  const fromEnv = process.env.ANDROMEDA_PROPERTY_SEED
  return fromEnv === undefined || fromEnv === '' ? undefined : Number(fromEnv)
}

/**
 * Model-based property tests for a `CounterStore` through the engine: random sequences of
 * consume / refund / get / set / reset / transact / consumeAll / idempotent replays (and, with a
 * clock, time moving past TTLs, idempotency records and period windows), over a few quotas and
 * ids that look like separators, hash tags and prototype properties, each step checked against
 * a pure model of the guarantees; and concurrent consumes, refunds and consumeAlls started in a
 * random order, checked against the ledger. Call it at the top level of a vitest file.
 *
 * A failure prints the shrunk command sequence and the seed; replay it with
 * `ANDROMEDA_PROPERTY_SEED=<seed>` (or the `seed` option).
 *
 * @example
 * ```ts
 * // test/properties.test.ts
 * import { createManualClock, runStoreProperties } from '@andromeda/store-test-suite'
 * import { createMemoryStore } from '@andromeda/memory'
 *
 * const clock = createManualClock()
 * runStoreProperties({ name: 'memory', clock, createStore: () => createMemoryStore({ clock: clock.now }) })
 * ```
 */
export function runStoreProperties<S extends CounterStore>(options: PropertyOptions<S>): void {
  const seed = seedOf(options)
  const params = (numRuns: number): fc.Parameters<unknown> => ({
    numRuns: runsOf(options, numRuns),
    ...(seed === undefined ? {} : { seed }),
  })
  const clocked = options.clock !== undefined

  describe(`model-based properties on ${options.name}`, () => {
    it(`random sequences of quota operations${clocked ? ' and time moves' : ''} agree with the model at every step`, () =>
      withStore(options, async (store) => {
        await fc.assert(
          fc.asyncProperty(setupArbitrary(clocked), fc.array(commandArbitrary(clocked), { maxLength: 30 }), (setup, commands) =>
            runSequence({ store, clock: options.clock }, setup, commands),
          ),
          params(200),
        )
      }), 120_000)

    it('concurrent consumes, refunds and consumeAlls in any order: usage == loaded + granted - refunded, within [0, limit]', () =>
      withStore(options, async (store) => {
        const op = fc.record({
          kind: fc.constantFrom('consume' as const, 'consume' as const, 'refund' as const, 'consumeAll' as const),
          id: fc.integer({ min: 0, max: 1 }),
          cost: fc.integer({ min: 0, max: 3 }),
        })
        await fc.assert(
          fc.asyncProperty(
            fc.scheduler(),
            fc.record({
              limit: fc.integer({ min: 0, max: 10 }),
              otherLimit: fc.integer({ min: 0, max: 10 }),
              loaded: fc.option(fc.integer({ min: 0, max: 10 })),
              saga: fc.boolean(),
            }),
            fc.array(op, { minLength: 1, maxLength: 40 }),
            (s, setup, ops) => runConcurrent(store, s, setup, ops),
          ),
          params(100),
        )
      }), 120_000)

    it('an idempotent replay reports the lifetime the recorded call reported, less the time since', () =>
      withStore(options, async (store) => {
        // The engine's clock is frozen, so resetAt moves only with the lifetime the store reports:
        // a store that replays the recorded ttlMs as it was would report the same resetAt later on.
        // Frozen where the store's injected clock is now (one time source: a quota's clock may not disagree with it).
        const frozenAt = options.clock?.now() ?? Date.now()
        const quota = createQuota({ name: randomName('replay'), store, limit: 5, ttlMs: 600_000, clock: () => frozenAt })
        const first = await quota.consume('a', 1, { idempotencyKey: 'k' })
        expect(first.resetAt).toBeDefined()
        const recordedAt = options.clock?.now() ?? Date.now()
        if (options.clock) await options.clock.advance(50)
        else while (Date.now() - recordedAt < 50) await new Promise((resolve) => setTimeout(resolve, 10))
        const replay = await quota.consume('a', 1, { idempotencyKey: 'k' })
        expect(replay).toMatchObject({ status: 'replayed', allowed: true, usage: 1 })
        expect(replay.resetAt).toBeLessThan(first.resetAt!)
      }))

    it('bad arguments are InvalidArgumentErrors naming the argument and never touch a counter', () =>
      withStore(options, async (store) => {
        const bad = fc.oneof(
          fc.constantFrom<unknown>(-1, 0.5, Number.NaN, Infinity, -Infinity, 2 ** 53, '1', null, true, {}, [], () => 1),
          fc.double().filter((n) => !Number.isSafeInteger(n) || n < 0),
          fc.string(),
        )
        await fc.assert(
          fc.asyncProperty(bad, fc.constantFrom('consume' as const, 'refund' as const, 'set' as const), async (value, method) => {
            const quota = createQuota({ name: randomName('bad'), store, limit: 5 })
            await quota.consume('sentinel', 2)
            const error = await (method === 'set' ? quota.set('sentinel', value as number) : quota[method]('sentinel', value as number)).then(
              () => undefined,
              (e: unknown) => e,
            )
            expect(InvalidArgumentError.isInstance(error), String(error)).toBe(true)
            expect((error as InvalidArgumentError).argument).toBe(method === 'set' ? 'usage' : 'cost')
            expect((await quota.get('sentinel')).usage).toBe(2)
          }),
          params(100),
        )
      }), 120_000)
  })
}
