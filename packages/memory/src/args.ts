import type { ApplyOptions, CounterOp } from '@andromeda/core'
import { InvalidArgumentError } from '@andromeda/core'

/*
 * Checks of the store methods' arguments, with the rules and messages of the Redis and SQL
 * stores: values are safe integers >= 0, lifetimes safe integers >= 1 (ms), keys and tokens
 * non-empty strings. A bad argument throws an `InvalidArgumentError` naming it, before the
 * method reads or writes anything.
 */

export function checkInteger(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(name, `must be an integer in [${min}, 2^53 - 1], got ${String(value)}`)
  }
  return value
}

export function optionalInteger(name: string, value: unknown, min: number): number | undefined {
  return value === undefined ? undefined : checkInteger(name, value, min)
}

export function checkKey(name: string, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidArgumentError(name, 'must be a non-empty string')
  return key
}

/**
 * The ops and options of an `apply` that takes the general path. A single op without hold,
 * settle or idempotency options (a consume or refund) is not checked: that is the engine's hot
 * path, and the engine checked its input already.
 */
export function checkApply(ops: readonly CounterOp[], options: ApplyOptions): void {
  if (!Array.isArray(ops)) throw new InvalidArgumentError('ops', 'must be an array')
  for (let i = 0; i < ops.length; i++) checkOp(ops[i], i)
  if (options.idempotencyKey !== undefined) {
    checkKey('idempotencyKey', options.idempotencyKey)
    // A null lifetime is the default one, as on the Redis and SQL stores (`?? default`).
    optionalInteger('idempotencyTtlMs', options.idempotencyTtlMs ?? undefined, 1)
  }
  if (options.clearIdempotencyKey !== undefined) checkKey('clearIdempotencyKey', options.clearIdempotencyKey)
}

/** Every field of op `i`, whatever its sign (as the SQL store checks them). */
function checkOp(op: CounterOp | undefined, i: number): void {
  if (typeof op !== 'object' || op === null) throw new InvalidArgumentError(`ops[${i}]`, 'must be an object')
  checkKey(`ops[${i}].key`, op.key)
  if (op.ifMissing !== 'create' && op.ifMissing !== 'report')
    throw new InvalidArgumentError(`ops[${i}].ifMissing`, `must be 'create' or 'report'`)
  const delta = checkInteger(`ops[${i}].delta`, op.delta, -Number.MAX_SAFE_INTEGER)
  optionalInteger(`ops[${i}].max`, op.max, 0)
  optionalInteger(`ops[${i}].min`, op.min, -Number.MAX_SAFE_INTEGER)
  optionalInteger(`ops[${i}].ttlMs`, op.ttlMs, 1)
  const { hold, settle } = op
  if (hold !== undefined && settle !== undefined)
    throw new InvalidArgumentError(`ops[${i}]`, 'cannot both hold and settle')
  if (hold !== undefined && delta < 0) throw new InvalidArgumentError(`ops[${i}].delta`, 'must be >= 0 to hold units')
  // A hold of 0 units (a reserve of cost 0) holds nothing, a read, as on the SQL store: its fields are never used.
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
