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
export { type StoreMethod, type StoreWrapping, wrapStore } from './wrap-store.js'
export {
  AndromedaError,
  type AndromedaErrorCode,
  CompensationError,
  HoldExpiredError,
  InvalidArgumentError,
  LoadError,
  LockTimeoutError,
  QuotaExceededError,
  StoreError,
  toStoreError,
} from './errors.js'
export type {
  ApplyOptions,
  ApplyResult,
  CounterOp,
  CounterSnapshot,
  CounterStore,
  StoreCapabilities,
} from './store.js'
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
export { counterKey, type CounterWindow, encodeKeyPart, idempotencyKey, keyGroup, lockKey } from './keys.js'
export { periodSeconds, periodWindow } from './period.js'
export { checkOptionKeys, checkTimerMs, MAX_ID_LENGTH, MAX_NAME_LENGTH, MAX_TIMER_MS } from './validate.js'
export { createUsageSync, type UsageSync, type UsageSyncOptions } from './sync.js'
