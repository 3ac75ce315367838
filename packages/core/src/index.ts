/**
 * The quota engine: `createQuota`, the multi-quota calls, the write-behind sync, results and
 * errors, and the `CounterStore` contract. Store authors find the contract with its helpers
 * and key layout in `@andromeda/core/store`; the HTTP core of the middleware is
 * `@andromeda/core/http`.
 *
 * @packageDocumentation
 */

export {
  type ConsumeAllOptions,
  consumeAll,
  type ReserveAllOptions,
  reserveAll,
  type TransactAllOptions,
  transactAll,
} from './consume-all.js'
export { createQuota } from './create-quota.js'
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
// To read a counter straight from a store (tests, migrations, dashboards).
export { type CounterWindow, counterKey } from './keys.js'
export type {
  QuotaCompensateEvent,
  QuotaErrorEvent,
  QuotaEvent,
  QuotaHooks,
  QuotaLoadEvent,
  QuotaOptions,
} from './quota-options.js'
export { countsUnits } from './result.js'
export type * from './store/contract.js'
// The store contract and the helpers adapters use, also in `@andromeda/core/store`: kept here
// because adapters written against 0.1 import them from the root.
export { type StoreMethod, type StoreWrapping, wrapStore } from './store/wrap.js'
export { createUsageSync, type UsageSync, type UsageSyncOptions } from './sync.js'
export type {
  CallOptions,
  ConsumeAllItem,
  ConsumeAllResult,
  Period,
  Quota,
  QuotaContext,
  QuotaResult,
  QuotaResultBase,
  QuotaState,
  RefusalReason,
  Reservation,
  ReservationAll,
  ReserveOptions,
  Resolvable,
  TransactOptions,
} from './types.js'
export { checkOptionKeys, checkTimerMs, MAX_TIMER_MS } from './validate.js'
