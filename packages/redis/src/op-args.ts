import type { ApplyOptions, CounterOp } from '@andromeda/core'
import { InvalidArgumentError } from '@andromeda/core'
import { checkInteger, checkKey } from '@andromeda/core/store'

/** What an idempotency record is kept for when the engine names no lifetime: one day. */
const DEFAULT_RECORD_TTL_MS = 86_400_000

/** A call's keys (prefixed) and script arguments, and whether sending it twice is harmless. */
export interface CallArgs {
  keys: string[]
  args: string[]
  /** Sending it twice cannot count twice: it changes nothing, or a record replays it. */
  idempotent: boolean
}

/** `checkInteger` for an optional argument, as a script slot ('' = none). */
export const optionalInteger = (name: string, value: number | undefined, min: number): string =>
  value === undefined ? '' : String(checkInteger(name, value, min))

/** `checkInteger` for a field of `ops[i]`, as a string; the argument's name is built only on failure. */
function opInteger(
  ops: readonly CounterOp[],
  i: number,
  field: 'delta' | 'max' | 'min' | 'ttlMs',
  min: number,
  optional: boolean,
): string {
  const value = ops[i]![field]
  if (value === undefined && optional) return ''
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min)
    checkInteger(`ops[${i}].${field}`, value, min)
  return String(value)
}

function checkIfMissing(op: CounterOp, i: number): void {
  if (op.ifMissing !== 'create' && op.ifMissing !== 'report')
    throw new InvalidArgumentError(`ops[${i}].ifMissing`, `must be 'create' or 'report'`)
}

/** An op's hold or settle, as script slots: kind ('' | 'h' | 's'), hold id, holdMs or units to keep. */
function holdArgs(op: CounterOp, i: number): { kind: '' | 'h' | 's'; id: string; value: string } {
  const { hold, settle } = op
  if (hold === undefined && settle === undefined) return { kind: '', id: '', value: '' }
  if (hold !== undefined && settle !== undefined)
    throw new InvalidArgumentError(`ops[${i}]`, 'cannot both hold and settle')
  if (hold !== undefined) {
    if (!(op.delta > 0)) throw new InvalidArgumentError(`ops[${i}].delta`, 'must be > 0 to hold units')
    return {
      kind: 'h',
      id: checkKey(`ops[${i}].hold.id`, hold.id),
      value: String(checkInteger(`ops[${i}].hold.holdMs`, hold.holdMs, 1)),
    }
  }
  if (op.delta !== 0) throw new InvalidArgumentError(`ops[${i}].delta`, 'must be 0 to settle a hold')
  return {
    kind: 's',
    id: checkKey(`ops[${i}].settle.id`, settle!.id),
    value: String(checkInteger(`ops[${i}].settle.keep`, settle!.keep, 0)),
  }
}

/** The record's lifetime slot: empty without an idempotency key. */
function recordTtl(options: ApplyOptions): string {
  if (options.idempotencyKey === undefined) return ''
  return optionalInteger('idempotencyTtlMs', options.idempotencyTtlMs ?? DEFAULT_RECORD_TTL_MS, 1)
}

/** The record keys of a call, after its counter keys: the one to write, then the one to clear. */
function recordKeys(prefix: string, options: ApplyOptions): { keys: string[]; shape: string } {
  const keys: string[] = []
  let shape = ''
  if (options.idempotencyKey !== undefined) {
    keys.push(prefix + checkKey('idempotencyKey', options.idempotencyKey))
    shape += 'r'
  }
  if (options.clearIdempotencyKey !== undefined) {
    keys.push(prefix + checkKey('clearIdempotencyKey', options.clearIdempotencyKey))
    shape += 'c'
  }
  return { keys, shape }
}

/**
 * One op as a call of the batch script: its six slots (shape, delta, bound, ttl, ifMissing,
 * record ttl), then hold id and value when it holds or settles (see `scripts/batch.ts`).
 */
export function oneOpArgs(prefix: string, op: CounterOp, options: ApplyOptions): CallArgs {
  const ops = [op]
  const key = op.key
  if (typeof key !== 'string' || key.length === 0) checkKey('ops[0].key', key)
  checkIfMissing(op, 0)
  const delta = opInteger(ops, 0, 'delta', -Number.MAX_SAFE_INTEGER, false)
  const sign = op.delta
  // Only one bound can refuse an op (max an increment, min a decrement): one slot.
  const bound =
    sign > 0
      ? opInteger(ops, 0, 'max', 0, true)
      : sign < 0
        ? opInteger(ops, 0, 'min', -Number.MAX_SAFE_INTEGER, true)
        : ''
  const ttl = opInteger(ops, 0, 'ttlMs', 1, true)
  const hold = holdArgs(op, 0)
  const records = recordKeys(prefix, options)
  const keys = [prefix + key, ...records.keys]
  const args = [
    'a' + records.shape + hold.kind,
    delta,
    bound,
    ttl,
    op.ifMissing === 'create' ? 'c' : 'r',
    recordTtl(options),
  ]
  if (hold.kind !== '') args.push(hold.id, hold.value)
  // A settle replays by itself; a read or a zero-delta op changes nothing.
  const idempotent = options.idempotencyKey !== undefined || (sign === 0 && hold.kind !== 'h')
  return { keys, args, idempotent }
}

/** Several ops, all or nothing, as a call of the apply script: count, record ttl, seven slots per op. */
export function manyOpsArgs(prefix: string, ops: readonly CounterOp[], options: ApplyOptions): CallArgs {
  const keys: string[] = []
  const args: string[] = [String(ops.length), '']
  let writes = false
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i]!
    const key = op.key
    if (typeof key !== 'string' || key.length === 0) checkKey(`ops[${i}].key`, key)
    keys.push(prefix + key)
    checkIfMissing(op, i)
    const delta = opInteger(ops, i, 'delta', -Number.MAX_SAFE_INTEGER, false)
    const max = opInteger(ops, i, 'max', 0, true)
    const min = opInteger(ops, i, 'min', -Number.MAX_SAFE_INTEGER, true)
    const sign = op.delta as number
    const hold = holdArgs(op, i)
    if (sign !== 0 || hold.kind === 'h') writes = true
    args.push(
      delta,
      sign > 0 ? max : sign < 0 ? min : '',
      opInteger(ops, i, 'ttlMs', 1, true),
      op.ifMissing === 'create' ? 'c' : 'r',
    )
    args.push(hold.kind, hold.id, hold.value)
  }
  keys.push(...recordKeys(prefix, options).keys)
  args[1] = recordTtl(options)
  return { keys, args, idempotent: options.idempotencyKey !== undefined || !writes }
}
