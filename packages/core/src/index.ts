/**
 * The quota engine: `createQuota`, the multi-quota calls, the write-behind sync, results and
 * errors, and the `CounterStore` contract. Store authors find the contract with its helpers
 * and key layout in `@andromeda/core/store`; the HTTP core of the middleware is
 * `@andromeda/core/http`.
 *
 * @packageDocumentation
 */
export { createQuota } from './quota.js'
export {
  consumeAll,
  type ConsumeAllOptions,
  reserveAll,
  type ReserveAllOptions,
  transactAll,
  type TransactAllOptions,
} from './consume-all.js'
export { countsUnits } from './result.js'
export {
  AndromedaError,
  type AndromedaErrorCode,
  CompensationError,
  HoldExpiredError,
  InvalidArgumentError,
  LoadError,
  type LoadOption,
  LockTimeoutError,
  QuotaExceededError,
  StoreError,
  toStoreError,
} from './errors.js'
// The store contract and the helpers adapters use, also in `@andromeda/core/store`: kept here
// because adapters written against 0.1 import them from the root.
export { type StoreMethod, type StoreWrapping, wrapStore } from './store/wrap.js'
export type {
  ApplyOptions,
  ApplyResult,
  CounterOp,
  CounterSnapshot,
  CounterStore,
  StoreCapabilities,
} from './store/contract.js'
export type {
  QuotaCompensateEvent,
  QuotaErrorEvent,
  QuotaEvent,
  QuotaHooks,
  QuotaLoadEvent,
  QuotaOptions,
} from './quota-options.js'
export type {
  CallOptions,
  ConsumeAllItem,
  ConsumeAllResult,
  Period,
  Quota,
  QuotaContext,
  QuotaResult,
  QuotaResultBase,
  RefusalReason,
  Reservation,
  ReservationAll,
  ReserveOptions,
  QuotaState,
  Resolvable,
  TransactOptions,
} from './types.js'
// To read a counter straight from a store (tests, migrations, dashboards).
export { counterKey, type CounterWindow } from './keys.js'
export { checkOptionKeys, checkTimerMs, MAX_TIMER_MS } from './validate.js'
export { createUsageSync, type UsageSync, type UsageSyncOptions } from './sync.js'
