import { InvalidArgumentError } from '../errors.js'
import type { ApplyOptions, CounterOp } from './contract.js'

/*
 * Checks of a store method's arguments, one set for every store, so each answers a bad argument
 * alike: values are safe integers >= 0, lifetimes safe integers >= 1 (ms), keys and tokens
 * non-empty strings. A bad argument throws an `InvalidArgumentError` naming it, before the
 * method reads or writes anything.
 */

/**
 * `value` if it is a safe integer >= `min`; else an `InvalidArgumentError` naming `name`.
 *
 * @example
 * ```ts
 * checkInteger('ttlMs', 0, 1) // throws InvalidArgumentError: ttlMs: must be an integer in [1, 2^53 - 1], got 0
 * ```
 */
export function checkInteger(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(name, `must be an integer in [${min}, 2^53 - 1], got ${String(value)}`)
  }
  return value
}

/** `checkInteger` for an optional argument: undefined passes. */
export function optionalInteger(name: string, value: unknown, min: number): number | undefined {
  return value === undefined ? undefined : checkInteger(name, value, min)
}

/**
 * `key` if it is a non-empty string (a key, a hold id, a lock token); else an
 * `InvalidArgumentError` naming `name`.
 *
 * @example
 * ```ts
 * checkKey('token', '') // throws InvalidArgumentError: token: must be a non-empty string
 * ```
 */
export function checkKey(name: string, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidArgumentError(name, 'must be a non-empty string')
  return key
}

/**
 * The arguments of `CounterStore.apply`: every field of every op (whatever its sign), then the
 * idempotency options. A hold of 0 units (a reserve of cost 0) holds nothing, a read, so its
 * fields are never used; a null `idempotencyTtlMs` is the store's default lifetime.
 *
 * @throws InvalidArgumentError naming the first bad argument (`ops[1].delta`, `idempotencyKey`, ...).
 * @example
 * ```ts
 * checkApplyArgs([{ key: 'k', delta: 1, ifMissing: 'create' }], {}) // passes
 * ```
 */
export function checkApplyArgs(ops: readonly CounterOp[], options: ApplyOptions): void {
  if (!Array.isArray(ops)) throw new InvalidArgumentError('ops', 'must be an array')
  for (let i = 0; i < ops.length; i++) checkHoldAndSettle(ops[i]!, i, checkCounterFields(ops[i], i))
  if (options.idempotencyKey !== undefined) {
    checkKey('idempotencyKey', options.idempotencyKey)
    optionalInteger('idempotencyTtlMs', options.idempotencyTtlMs ?? undefined, 1)
  }
  if (options.clearIdempotencyKey !== undefined) checkKey('clearIdempotencyKey', options.clearIdempotencyKey)
}

/** Op `i`'s key, ifMissing, delta, bounds and lifetime; returns its delta. */
function checkCounterFields(op: CounterOp | undefined, i: number): number {
  if (typeof op !== 'object' || op === null) throw new InvalidArgumentError(`ops[${i}]`, 'must be an object')
  checkKey(`ops[${i}].key`, op.key)
  if (op.ifMissing !== 'create' && op.ifMissing !== 'report')
    throw new InvalidArgumentError(`ops[${i}].ifMissing`, `must be 'create' or 'report'`)
  const delta = checkInteger(`ops[${i}].delta`, op.delta, -Number.MAX_SAFE_INTEGER)
  optionalInteger(`ops[${i}].max`, op.max, 0)
  optionalInteger(`ops[${i}].min`, op.min, -Number.MAX_SAFE_INTEGER)
  optionalInteger(`ops[${i}].ttlMs`, op.ttlMs, 1)
  return delta
}

/** Op `i`'s hold and settle. */
function checkHoldAndSettle(op: CounterOp, i: number, delta: number): void {
  const { hold, settle } = op
  if (hold !== undefined && settle !== undefined)
    throw new InvalidArgumentError(`ops[${i}]`, 'cannot both hold and settle')
  if (hold !== undefined && delta < 0) throw new InvalidArgumentError(`ops[${i}].delta`, 'must be >= 0 to hold units')
  if (hold !== undefined && delta > 0) {
    if (typeof hold !== 'object' || hold === null)
      throw new InvalidArgumentError(`ops[${i}].hold`, 'must be an object { id, holdMs }')
    checkKey(`ops[${i}].hold.id`, hold.id)
    checkInteger(`ops[${i}].hold.holdMs`, hold.holdMs, 1)
  }
  if (settle !== undefined) {
    if (typeof settle !== 'object' || settle === null)
      throw new InvalidArgumentError(`ops[${i}].settle`, 'must be an object { id, keep }')
    if (delta !== 0) throw new InvalidArgumentError(`ops[${i}].delta`, 'must be 0 to settle a hold')
    checkKey(`ops[${i}].settle.id`, settle.id)
    checkInteger(`ops[${i}].settle.keep`, settle.keep, 0)
  }
}
