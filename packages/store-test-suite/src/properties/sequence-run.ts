import {
  type CounterStore,
  counterKey,
  createQuota,
  type Quota,
  type QuotaHooks,
  type Reservation,
} from '@andromeda/core'
import { hashTagGroup, idempotencyKey } from '@andromeda/core/store'
import { type ModelHold, type ModelPeriod, type ModelQuotaSpec, QuotaModel, windowStartAt } from '../model.js'
import { randomName } from '../random.js'
import { sagaOnly } from '../store-views.js'
import { type Cmd, PER_ID, PROPERTY_IDS, SAGA, type Setup, UNLIMITED_ID } from './commands.js'
import type { PropertyClock } from './property-options.js'

/** What one random sequence works on: its quotas and their specs for the model, the model, and what earlier steps left. */
export interface SequenceRun {
  store: CounterStore
  clock: PropertyClock | undefined
  /** The engine's clock: the property clock, else frozen (see `startRun`). */
  now: () => number
  ids: readonly string[]
  specs: ModelQuotaSpec[]
  quotas: Quota[]
  model: QuotaModel
  /** Hook calls of the current step, as `hook:id:cost:allowed`. */
  events: string[]
  /** Every reservation made so far, with the model's view of it: settle commands pick one. */
  reservations: { handle: Reservation; model: ModelHold; q: number }[]
  /** Idempotency keys given to keyed consumeAll commands, so a replay re-issues the same key. */
  allKeys: Map<Cmd, string>
}

/** The quotas of a run, on fresh names, and a model that has seen nothing. */
export function startRun(store: CounterStore, clock: PropertyClock | undefined, setup: Setup): SequenceRun {
  // Without clock control the engine's clock is frozen at the start of today's UTC day: period
  // counters then live about a day of real time and never expire during a run.
  const frozenAt = windowStartAt('day', Date.now())
  const now = () => (clock ? clock.now() : frozenAt)
  const ids = PROPERTY_IDS as readonly string[]
  const specs = specsOf(setup, clock ? 'minute' : 'day')
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
  return {
    store,
    clock,
    now,
    ids,
    specs,
    quotas,
    model: new QuotaModel(),
    events,
    reservations: [],
    allKeys: new Map(),
  }
}

/** The five quotas (see `commands.ts`) as the model sees them. */
function specsOf(setup: Setup, period: ModelPeriod): ModelQuotaSpec[] {
  const ids = PROPERTY_IDS as readonly string[]
  const prefix = randomName('p')
  return [
    {
      name: `${prefix}-plain`,
      limit: () => setup.plainLimit,
      ttlMs: setup.plainTtlMs,
      idempotencyTtlMs: setup.idempotencyTtlMs,
    },
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
}

/** Without clock control, a TTL's reset time is compared for presence only. */
export function looseResetAt(run: SequenceRun, q: number): boolean {
  return run.clock === undefined && run.specs[q]!.period === undefined
}

/** Whether the engine will take the single atomic apply for these items (else the saga). */
export function atomicPath(run: SequenceRun, items: { q: number; id: number }[], key: string | undefined): boolean {
  const { specs, ids } = run
  const counted = items.filter((item) => specs[item.q]!.limit(ids[item.id]!) !== null)
  if (counted.length === 0 || counted.some((item) => item.q === SAGA)) return false
  const keys = counted.map((item) => {
    const spec = specs[item.q]!
    return counterKey(
      spec.name,
      ids[item.id]!,
      spec.period
        ? { period: spec.period, startAt: windowStartAt(spec.period, run.now()) }
        : spec.ttlMs === undefined
          ? undefined
          : 'ttl',
    )
  })
  const first = counted[0]!
  const record = idempotencyKey(hashTagGroup(specs[first.q]!.name, ids[first.id]!), 'all', key ?? '')
  return run.store.capabilities.canApplyTogether(key === undefined ? keys : [...keys, record])
}
