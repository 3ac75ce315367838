/**
 * For store authors: the `CounterStore` contract an adapter implements, the helpers adapters
 * share (`wrapStore`, `toStoreError`, `checkOptionKeys`, `checkTimerMs`, the argument checks
 * `checkApplyArgs`, `checkInteger`, `checkKey`, `optionalInteger`, the order of an apply's checks
 * `checkOrder`, and the reply readers of
 * server-side code `parseCounterValue`, `parseOptionalCounterValue`, `parseTtlMs`, `parseRefusal`), the errors a store
 * throws, and the key layout the engine hands a store (`counterKey`, `hashTagGroup`,
 * `idempotencyKey`, `lockKey`): every key of one (quota, id) starts with its hash tag, so a Cluster store
 * can apply them together. Run `@andromeda/store-test-suite` against an adapter to check it.
 *
 * @packageDocumentation
 */

export { AndromedaError, InvalidArgumentError, StoreError, toStoreError } from '../errors.js'
export { type CounterWindow, counterKey, hashTagGroup, idempotencyKey, lockKey } from '../keys.js'
export { checkOptionKeys, checkTimerMs, MAX_TIMER_MS } from '../validate.js'
export { checkApplyArgs, checkInteger, checkKey, optionalInteger } from './args.js'
export { checkOrder, type OpOutcome, type OpsVerdict } from './check-order.js'
export type * from './contract.js'
export { parseCounterValue, parseOptionalCounterValue, parseRefusal, parseTtlMs } from './replies.js'
export { type StoreMethod, type StoreWrapping, wrapStore } from './wrap.js'
