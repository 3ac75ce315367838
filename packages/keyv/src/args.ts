import type { ApplyOptions, CounterOp } from '@andromeda/core'
import { InvalidArgumentError } from '@andromeda/core'

/*
 * Checks of the store methods' arguments on the paths this package runs itself (the process-atomic
 * path and the SQL path), with the rules and messages of `@andromeda/redis`: values are safe
 * integers >= 0, lifetimes safe integers >= 1 (ms), keys and tokens non-empty strings. A bad
 * argument throws an `InvalidArgumentError` naming it, before the method reads or writes anything.
 */

/**
 * Longest lock token, in UTF-16 units: the longest id the engine takes. Its UTF-8 (at most 3 bytes
 * a unit) fits MySQL's `BLOB` (65,535 bytes), so the database never refuses a token the store took;
 * the process-atomic path takes the same tokens, so a store can move between them. The engine's own
 * tokens are UUIDs.
 */
export const MAX_TOKEN_LENGTH = 16_384

export function checkInteger(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(name, `must be an integer in [${min}, 2^53 - 1], got ${String(value)}`)
  }
  return value
}

export function checkKey(name: string, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidArgumentError(name, 'must be a non-empty string')
  return key
}

export function checkToken(name: string, token: unknown): string {
  checkKey(name, token)
  if ((token as string).length > MAX_TOKEN_LENGTH)
    throw new InvalidArgumentError(name, `must be at most ${MAX_TOKEN_LENGTH} characters`)
  return token as string
}

/**
 * Op `i`'s hold and settle, by the SQL path's rules: a hold of 0 units (a reserve of cost 0) holds
 * nothing, a read, so its fields are never used.
 */
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

/** Op `i`'s key, ifMissing, delta, bounds and lifetime, whatever its sign; returns its delta. */
function checkCounterFields(op: CounterOp, i: number): number {
  if (typeof op !== 'object' || op === null) throw new InvalidArgumentError(`ops[${i}]`, 'must be an object')
  checkKey(`ops[${i}].key`, op.key)
  if (op.ifMissing !== 'create' && op.ifMissing !== 'report')
    throw new InvalidArgumentError(`ops[${i}].ifMissing`, `must be 'create' or 'report'`)
  const delta = checkInteger(`ops[${i}].delta`, op.delta, -Number.MAX_SAFE_INTEGER)
  if (op.max !== undefined) checkInteger(`ops[${i}].max`, op.max, 0)
  if (op.min !== undefined) checkInteger(`ops[${i}].min`, op.min, -Number.MAX_SAFE_INTEGER)
  if (op.ttlMs !== undefined) checkInteger(`ops[${i}].ttlMs`, op.ttlMs, 1)
  return delta
}

/** An `apply` on the process-atomic path: every op, then the idempotency options. */
export function checkApply(ops: readonly CounterOp[], options: ApplyOptions): void {
  if (!Array.isArray(ops)) throw new InvalidArgumentError('ops', 'must be an array')
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!
    checkHoldAndSettle(op, i, checkCounterFields(op, i))
  }
  if (options.idempotencyKey !== undefined) {
    checkKey('idempotencyKey', options.idempotencyKey)
    // A null lifetime is the default one, as on the SQL path and `@andromeda/redis` (`?? default`).
    const lifetime = options.idempotencyTtlMs ?? undefined
    if (lifetime !== undefined) checkInteger('idempotencyTtlMs', lifetime, 1)
  }
  if (options.clearIdempotencyKey !== undefined) checkKey('clearIdempotencyKey', options.clearIdempotencyKey)
}
