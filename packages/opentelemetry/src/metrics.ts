import {
  type CounterStore,
  checkOptionKeys,
  InvalidArgumentError,
  type QuotaHooks,
  type QuotaOptions,
} from '@andromeda/core'
import type { MeterProvider } from '@opentelemetry/api'
import { composeHooks, recordingHooks } from './hooks.js'
import { instrumentsFor } from './instruments.js'
import { instrumentStore } from './store.js'

/** Where the metrics go. */
export interface MetricsOptions {
  /**
   * The MeterProvider to create the instruments with. Default: the global one
   * (`metrics.getMeterProvider()` of `@opentelemetry/api`), which records nothing until an SDK
   * registers itself.
   */
  meterProvider?: MeterProvider
}

/** `MetricsOptions`: an object of known keys only (a misspelt `meterProvidr` would record to the global provider unnoticed). */
function checkMetricsOptions(metrics: unknown): void {
  if (typeof metrics !== 'object' || metrics === null)
    throw new InvalidArgumentError('metrics', 'must be an object { meterProvider? }')
  checkOptionKeys('metrics', metrics, ['meterProvider'])
}

/**
 * `createQuota` options with OpenTelemetry metrics: the same options, with hooks that count
 * each event (your own hooks still run, after) and a store that times each call. Metrics are
 * labelled by the quota's name, never by id.
 *
 * Instruments (meter `@andromeda/opentelemetry`):
 *
 * | instrument | kind, unit | attributes |
 * |---|---|---|
 * | `andromeda.quota.granted` | counter, `{call}` | `andromeda.quota.name`, `andromeda.quota.grant` (`counted`, `replayed`, `unlimited`, `degraded`) |
 * | `andromeda.quota.refused` | counter, `{call}` | `andromeda.quota.name`, `andromeda.quota.reason` (`limit`, `floor`, `store`) |
 * | `andromeda.quota.refunded` | counter, `{call}` | `andromeda.quota.name`, `andromeda.quota.grant` |
 * | `andromeda.quota.errors` | counter, `{call}` | `andromeda.quota.name`, `andromeda.quota.operation`, `error.type` (the error's code) |
 * | `andromeda.quota.loads` | counter, `{load}` | `andromeda.quota.name` |
 * | `andromeda.quota.compensations` | counter, `{compensation}` | `andromeda.quota.name`, `andromeda.compensation.outcome` (`given_back`, `already_gone`, `failed`) |
 * | `andromeda.store.duration` | histogram, `s` | `andromeda.quota.name`, `andromeda.store.operation`, `error.type` on failure |
 *
 * Quotas that share a store get one timed wrapper of it (so `consumeAll` across them stays one
 * atomic call): instrument every quota that shares a store, or none.
 *
 * @example
 * ```ts
 * import { createQuota } from '@andromeda/core'
 * import { createMemoryStore } from '@andromeda/memory'
 * import { withMetrics } from '@andromeda/opentelemetry'
 *
 * const api = createQuota(withMetrics({ name: 'api', store: createMemoryStore(), limit: 100, period: 'hour' }))
 * ```
 */
export function withMetrics<D>(options: QuotaOptions<D>, metrics: MetricsOptions = {}): QuotaOptions<D> {
  checkMetricsOptions(metrics)
  const instruments = instrumentsFor(metrics.meterProvider)
  const store = (options as { store?: CounterStore }).store
  return {
    ...options,
    // An invalid store is left as it is, for createQuota to refuse with its own error.
    ...(store && typeof store === 'object' ? { store: instrumentStore(store, instruments) } : {}),
    hooks: composeHooks(recordingHooks(instruments), options.hooks),
  }
}

/**
 * Only the recording hooks, for quotas whose options you assemble yourself (compose them with
 * your own). Counts events; store latency needs `timedStore`.
 */
export function metricsHooks(metrics: MetricsOptions = {}): QuotaHooks<any> {
  checkMetricsOptions(metrics)
  return recordingHooks(instrumentsFor(metrics.meterProvider))
}

/** Only the timed store wrapper (`andromeda.store.duration`), for stores you hand out yourself. */
export function timedStore(store: CounterStore, metrics: MetricsOptions = {}): CounterStore {
  checkMetricsOptions(metrics)
  return instrumentStore(store, instrumentsFor(metrics.meterProvider))
}
