import { InvalidArgumentError } from './errors.js'

/** Longest accepted id (UTF-16 code units). Long enough for a 10 kB id; bounded so keys stay sane. */
export const MAX_ID_LENGTH = 16_384
/** Longest accepted quota name. */
export const MAX_NAME_LENGTH = 256

const typeOf = (value: unknown) => (value === null ? 'null' : typeof value === 'number' ? String(value) : typeof value)

/** A non-empty, well-formed string of bounded length. Lone surrogates would collide once UTF-8 encoded. */
export function checkString(argument: string, value: unknown, maxLength: number): string {
  if (typeof value !== 'string') throw new InvalidArgumentError(argument, `must be a string, got ${typeOf(value)}`)
  if (value.length === 0) throw new InvalidArgumentError(argument, 'must not be empty')
  if (value.length > maxLength) throw new InvalidArgumentError(argument, `must be at most ${maxLength} characters, got ${value.length}`)
  if (!value.isWellFormed()) throw new InvalidArgumentError(argument, 'must be well-formed unicode (no lone surrogates)')
  return value
}

/** True for an id `checkString('id', ...)` accepts; the hot path's test, with no error built. */
export function isPlainId(value: unknown): value is string {
  return typeof value === 'string' && value.length !== 0 && value.length <= MAX_ID_LENGTH && value.isWellFormed()
}

/** True for a value `checkCount` accepts. */
export function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0
}

/** A safe integer >= 0 (cost, limit, usage). */
export function checkCount(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError(argument, `must be a safe integer >= 0, got ${typeOf(value)}`)
  }
  return value
}

/** A positive safe integer of milliseconds. */
export function checkDurationMs(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidArgumentError(argument, `must be a positive integer of milliseconds, got ${typeOf(value)}`)
  }
  return value
}

/** An optional positive integer of milliseconds. */
export function checkOptionalDurationMs(argument: string, value: unknown): number | undefined {
  return value === undefined ? undefined : checkDurationMs(argument, value)
}

export function checkFunction(argument: string, value: unknown): void {
  if (typeof value !== 'function') throw new InvalidArgumentError(argument, `must be a function, got ${typeOf(value)}`)
}

export function checkOneOf<T extends string>(argument: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new InvalidArgumentError(argument, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${String(value)}`)
  }
  return value as T
}

/** An AbortSignal, from this realm or another (checked by shape, not by class). */
function isAbortSignal(value: unknown): value is AbortSignal {
  const signal = value as AbortSignal | null
  return (
    typeof signal === 'object' &&
    signal !== null &&
    typeof signal.aborted === 'boolean' &&
    typeof signal.throwIfAborted === 'function' &&
    typeof signal.addEventListener === 'function'
  )
}

/** Options of one call: undefined or an object whose `signal`, when given, is an AbortSignal. */
export function checkCallOptions(value: unknown): void {
  if (value === undefined) return
  if (typeof value !== 'object' || value === null) throw new InvalidArgumentError('options', `must be an object, got ${typeOf(value)}`)
  const { signal } = value as { signal?: unknown }
  if (signal !== undefined && !isAbortSignal(signal)) throw new InvalidArgumentError('signal', `must be an AbortSignal, got ${typeOf(signal)}`)
}
