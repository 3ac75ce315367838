import { type Counter, type Histogram, type Meter, type MeterProvider, metrics } from '@opentelemetry/api'

/** Name of the instrumentation scope (the meter) the instruments are created under. */
export const SCOPE_NAME = '@andromeda/opentelemetry'

/** Attribute names: the quota's name, never an id (ids are unbounded; a metric label must not be). */
export const ATTR = {
  quota: 'andromeda.quota.name',
  operation: 'andromeda.quota.operation',
  grant: 'andromeda.quota.grant',
  reason: 'andromeda.quota.reason',
  outcome: 'andromeda.compensation.outcome',
  storeOperation: 'andromeda.store.operation',
  errorType: 'error.type',
} as const

/** Every instrument the package records to. */
export interface QuotaInstruments {
  /** Consume calls granted (`andromeda.quota.grant`: counted, replayed, unlimited, degraded). */
  granted: Counter
  /** Consume and refund calls refused (`andromeda.quota.reason`: limit, floor, store). */
  refused: Counter
  /** Refunds the caller asked for that were applied. */
  refunded: Counter
  /** The quota's own failures (`error.type`: the error's code, e.g. ERR_STORE, ERR_LOAD). */
  errors: Counter
  /** Usage loaded from `loadUsage` into the store. */
  loads: Counter
  /** Units given back by the engine on its own (`andromeda.compensation.outcome`). */
  compensations: Counter
  /** Duration of each store call, in seconds. */
  storeDuration: Histogram
}

/** Store calls of a fast store take microseconds to milliseconds; the default buckets start at 5 ms. */
const STORE_DURATION_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
]

const byProvider = new WeakMap<MeterProvider, QuotaInstruments>()

function create(meter: Meter): QuotaInstruments {
  const counter = (name: string, description: string) => meter.createCounter(name, { description, unit: '{call}' })
  return {
    granted: counter('andromeda.quota.granted', 'Consume calls granted'),
    refused: counter('andromeda.quota.refused', 'Consume and refund calls refused'),
    refunded: counter('andromeda.quota.refunded', 'Refunds applied at the caller’s request'),
    errors: counter('andromeda.quota.errors', 'Failures of the quota itself: store faults, failed loads'),
    loads: meter.createCounter('andromeda.quota.loads', {
      description: 'Counters loaded from loadUsage',
      unit: '{load}',
    }),
    compensations: meter.createCounter('andromeda.quota.compensations', {
      description: 'Give-backs the engine made on its own (a failed transact, a consumeAll rollback, an HTTP refund)',
      unit: '{compensation}',
    }),
    storeDuration: meter.createHistogram('andromeda.store.duration', {
      description: 'Duration of store calls',
      unit: 's',
      advice: { explicitBucketBoundaries: STORE_DURATION_BUCKETS_SECONDS },
    }),
  }
}

/** The instruments of one MeterProvider (the global one by default), created once. */
export function instrumentsFor(meterProvider: MeterProvider = metrics.getMeterProvider()): QuotaInstruments {
  let instruments = byProvider.get(meterProvider)
  if (!instruments) {
    instruments = create(meterProvider.getMeter(SCOPE_NAME))
    byProvider.set(meterProvider, instruments)
  }
  return instruments
}
