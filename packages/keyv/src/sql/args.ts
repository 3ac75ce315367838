import type { ApplyOptions, CounterOp } from '@andromeda/core'
import { InvalidArgumentError } from '@andromeda/core'
import { checkInteger, lockKey } from '@andromeda/core/store'
import { checkToken } from '../args.js'
import type { ApplyArgs, WriteRoutine } from './driver.js'

/** What an idempotency record is kept for when the engine names no lifetime: one day. */
const DEFAULT_IDEMPOTENCY_TTL_MS = 86_400_000

/** Maps an engine key to the bytes of the `storage_key` column (see keys.ts); `argument` names it in errors. */
export type StorageKey = (key: string, argument: string) => Buffer

export const optionalInteger = (name: string, value: unknown, min: number): number | null =>
  value === undefined ? null : checkInteger(name, value, min)

/** Hold ids are part of a key of the holds table: well-formed text of at most 255 characters. */
function holdId(argument: string, id: unknown): Buffer {
  if (typeof id !== 'string' || id.length === 0 || id.length > 255)
    throw new InvalidArgumentError(argument, 'must be a string of 1 to 255 characters')
  if (!id.isWellFormed()) throw new InvalidArgumentError(argument, 'must be well-formed unicode (no lone surrogates)')
  return Buffer.from(id, 'utf8')
}

/** A lock token's bytes: its length is checked here, so MySQL never refuses a token too long for its column. */
function tokenBytes(token: unknown, argument = 'token'): Buffer {
  checkToken(argument, token)
  if (!(token as string).isWellFormed())
    throw new InvalidArgumentError(argument, 'must be well-formed unicode (no lone surrogates)')
  return Buffer.from(token as string, 'utf8')
}

/**
 * The apply routine's arguments, checked, and whether the call writes (an op with a delta):
 * a call that writes nothing is safe to send again.
 */
export function applyArgs(
  ops: readonly CounterOp[],
  options: ApplyOptions,
  storageKey: StorageKey,
): { args: ApplyArgs; writes: boolean } {
  if (!Array.isArray(ops)) throw new InvalidArgumentError('ops', 'must be an array')
  const args: ApplyArgs = {
    keys: [],
    deltas: [],
    bounds: [],
    ttls: [],
    report: [],
    holdIds: [],
    holdMs: [],
    settleIds: [],
    keep: [],
    loadLocks: [],
    loadLockOrder: [],
    lockOrder: [],
    idempotencyKey: null,
    idempotencyTtlMs: null,
    clearKey: null,
  }
  let writes = false
  for (const [i, op] of ops.entries()) {
    const delta = pushCounterArgs(args, op, i, storageKey)
    if (delta !== 0) writes = true
    pushHoldArgs(args, op, i, delta)
    // A give-back that meets its counter missing revokes the counter's loader lock (see `CounterOp`).
    args.loadLocks.push(delta < 0 || op.settle !== undefined ? storageKey(lockKey(op.key), `ops[${i}].key`) : null)
  }
  pushRecordArgs(args, options, storageKey)
  args.loadLockOrder = distinctInOrder(args.loadLocks.filter((key) => key !== null))
  args.lockOrder = lockOrder(args)
  return { args, writes }
}

/** Op `i`'s key, delta, bound, ttl and ifMissing; returns its delta. */
function pushCounterArgs(args: ApplyArgs, op: CounterOp, i: number, storageKey: StorageKey): number {
  args.keys.push(storageKey(op.key, `ops[${i}].key`))
  if (op.ifMissing !== 'create' && op.ifMissing !== 'report')
    throw new InvalidArgumentError(`ops[${i}].ifMissing`, `must be 'create' or 'report'`)
  const delta = checkInteger(`ops[${i}].delta`, op.delta, -Number.MAX_SAFE_INTEGER)
  const max = optionalInteger(`ops[${i}].max`, op.max, 0)
  const min = optionalInteger(`ops[${i}].min`, op.min, -Number.MAX_SAFE_INTEGER)
  args.deltas.push(delta)
  args.bounds.push(delta > 0 ? max : delta < 0 ? min : null)
  args.ttls.push(optionalInteger(`ops[${i}].ttlMs`, op.ttlMs, 1))
  args.report.push(op.ifMissing === 'report')
  return delta
}

/** Op `i`'s hold or settle (null in both lists when it has none). */
function pushHoldArgs(args: ApplyArgs, op: CounterOp, i: number, delta: number): void {
  const { hold, settle } = op
  if (hold !== undefined && settle !== undefined)
    throw new InvalidArgumentError(`ops[${i}]`, 'cannot both hold and settle')
  if (hold !== undefined && delta < 0) throw new InvalidArgumentError(`ops[${i}].delta`, 'must be >= 0 to hold units')
  // A hold of 0 units (a reserve of cost 0) holds nothing: a read, as on the other stores.
  if (hold !== undefined && delta > 0) {
    args.holdIds.push(holdId(`ops[${i}].hold.id`, hold.id))
    args.holdMs.push(checkInteger(`ops[${i}].hold.holdMs`, hold.holdMs, 1))
  } else {
    args.holdIds.push(null)
    args.holdMs.push(null)
  }
  if (settle !== undefined) {
    if (delta !== 0) throw new InvalidArgumentError(`ops[${i}].delta`, 'must be 0 to settle a hold')
    args.settleIds.push(holdId(`ops[${i}].settle.id`, settle.id))
    args.keep.push(checkInteger(`ops[${i}].settle.keep`, settle.keep, 0))
  } else {
    args.settleIds.push(null)
    args.keep.push(null)
  }
}

/** The idempotency record to write and the one to clear. */
function pushRecordArgs(args: ApplyArgs, options: ApplyOptions, storageKey: StorageKey): void {
  if (options.idempotencyKey !== undefined) {
    args.idempotencyKey = storageKey(options.idempotencyKey, 'idempotencyKey')
    args.idempotencyTtlMs = checkInteger('idempotencyTtlMs', options.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS, 1)
  }
  if (options.clearIdempotencyKey !== undefined)
    args.clearKey = storageKey(options.clearIdempotencyKey, 'clearIdempotencyKey')
}

/** Every key the call touches but the loader locks, distinct: one lock order for every caller (see `distinctInOrder`). */
function lockOrder(args: ApplyArgs): Buffer[] {
  return distinctInOrder([
    ...args.keys,
    ...(args.idempotencyKey ? [args.idempotencyKey] : []),
    ...(args.clearKey ? [args.clearKey] : []),
  ])
}

/** Keys distinct, in byte order, as the database compares them: callers that lock in this order never deadlock. */
function distinctInOrder(keys: readonly Buffer[]): Buffer[] {
  const distinct = new Map(keys.map((key) => [key.toString('hex'), key]))
  return [...distinct.values()].sort(Buffer.compare)
}

/** The arguments of set, checked. */
export function setRoutine(storageKey: StorageKey, key: string, value: unknown, ttlMs: unknown): WriteRoutine {
  return {
    name: 'set',
    key: storageKey(key, 'key'),
    value: checkInteger('value', value, 0),
    ttlMs: optionalInteger('ttlMs', ttlMs, 1),
  }
}

/** The arguments of seed, checked: with a lock token, the counter's loader lock it must hold. */
export function seedRoutine(
  storageKey: StorageKey,
  key: string,
  value: unknown,
  ttlMs: unknown,
  lockToken: unknown,
): WriteRoutine {
  // Checked in the order the method names them, as on the other stores: key first.
  const counter = storageKey(key, 'key')
  const checkedValue = checkInteger('value', value, 0)
  const checkedTtl = optionalInteger('ttlMs', ttlMs, 1)
  const load =
    lockToken === undefined
      ? null
      : { lock: storageKey(lockKey(key), 'key'), token: tokenBytes(lockToken, 'lockToken') }
  return { name: 'seed', key: counter, value: checkedValue, ttlMs: checkedTtl, load }
}

/** The arguments of acquireLock, checked. */
export function acquireLockRoutine(storageKey: StorageKey, key: string, token: unknown, ttlMs: unknown): WriteRoutine {
  return {
    name: 'acquireLock',
    key: storageKey(key, 'key'),
    token: tokenBytes(token),
    ttlMs: checkInteger('ttlMs', ttlMs, 1),
  }
}

/** The arguments of releaseLock, checked. */
export function releaseLockRoutine(storageKey: StorageKey, key: string, token: unknown): WriteRoutine {
  return { name: 'releaseLock', key: storageKey(key, 'key'), token: tokenBytes(token) }
}
