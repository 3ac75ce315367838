import { describe, expect, it } from 'vitest'
import * as http from '../src/http/index.js'
import * as root from '../src/index.js'
import * as store from '../src/store/index.js'

// The entry points are the public API: a name that appears or disappears here is a change
// users see, and belongs in a changeset.
describe('public entry points', () => {
  it('the root exports what users call, the errors, and the store contract', () => {
    expect(Object.keys(root).sort()).toEqual(
      [
        'AndromedaError',
        'CompensationError',
        'HoldExpiredError',
        'InvalidArgumentError',
        'LoadError',
        'LockTimeoutError',
        'MAX_TIMER_MS',
        'QuotaExceededError',
        'StoreError',
        'checkOptionKeys',
        'checkTimerMs',
        'consumeAll',
        'countsUnits',
        'counterKey',
        'createQuota',
        'createUsageSync',
        'reserveAll',
        'toStoreError',
        'transactAll',
        'wrapStore',
      ].sort(),
    )
  })

  it('@andromeda/core/store exports the contract helpers and the key layout', () => {
    expect(Object.keys(store).sort()).toEqual(
      [
        'AndromedaError',
        'InvalidArgumentError',
        'MAX_TIMER_MS',
        'StoreError',
        'checkApplyArgs',
        'checkInteger',
        'checkKey',
        'checkOrder',
        'checkOptionKeys',
        'checkTimerMs',
        'counterKey',
        'hashTagGroup',
        'idempotencyKey',
        'lockKey',
        'optionalInteger',
        'parseCounterValue',
        'parseOptionalCounterValue',
        'parseRefusal',
        'parseTtlMs',
        'toStoreError',
        'wrapStore',
      ].sort(),
    )
  })

  it('@andromeda/core/http exports the gate, the problem bodies and secondsUntil, not the header formatters', () => {
    expect(Object.keys(http).sort()).toEqual(
      [
        'PROBLEM_CONTENT_TYPE',
        'QUOTA_EXCEEDED_TYPE',
        'QUOTA_GATE_OPTION_KEYS',
        'badIdempotencyKeyProblem',
        'createQuotaGate',
        'errorStatus',
        'defaultRefundWhen',
        'quotaExceededProblem',
        'secondsUntil',
        'storeUnavailableProblem',
      ].sort(),
    )
  })

  it('a store helper is the same function from the root and from the store entry', () => {
    expect(store.wrapStore).toBe(root.wrapStore)
    expect(store.counterKey).toBe(root.counterKey)
  })
})
