export { ATTR as METRIC_ATTRIBUTES, SCOPE_NAME } from './instruments.js'
export { type MetricsOptions, metricsHooks, timedStore, withMetrics } from './metrics.js'
