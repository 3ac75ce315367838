import { InvalidArgumentError } from './errors.js'

/** Longest accepted id (UTF-16 code units). Long enough for a 10 kB id; bounded so keys stay sane. */
export const MAX_ID_LENGTH = 16_384
/** Longest accepted quota name. */
export const MAX_NAME_LENGTH = 256
/** Longest accepted idempotency key (the HTTP gate refuses a longer `Idempotency-Key` header with a 400). */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 1024

const typeOf = (value: unknown) => (value === null ? 'null' : typeof value === 'number' ? String(value) : typeof value)

/** A non-empty, well-formed string of bounded length. Lone surrogates would collide once UTF-8 encoded. */
export function checkString(argument: string, value: unknown, maxLength: number): string {
  if (typeof value !== 'string') throw new InvalidArgumentError(argument, `must be a string, got ${typeOf(value)}`)
  if (value.length === 0) throw new InvalidArgumentError(argument, 'must not be empty')
  if (value.length > maxLength)
    throw new InvalidArgumentError(argument, `must be at most ${maxLength} characters, got ${value.length}`)
  if (!value.isWellFormed())
    throw new InvalidArgumentError(argument, 'must be well-formed unicode (no lone surrogates)')
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
    throw new InvalidArgumentError(
      argument,
      `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${String(value)}`,
    )
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

/** An optional idempotency key: a well-formed string of 1 to `MAX_IDEMPOTENCY_KEY_LENGTH` characters. */
export function checkIdempotencyKey(value: unknown): string | undefined {
  return value === undefined ? undefined : checkString('idempotencyKey', value, MAX_IDEMPOTENCY_KEY_LENGTH)
}

/** Keys of `CallOptions` (consume, refund). */
export const CALL_OPTION_KEYS: readonly string[] = ['idempotencyKey', 'signal', 'data']

/**
 * Options of one call: undefined or an object of `known` keys only (see `checkOptionKeys`) whose
 * `signal`, when given, is an AbortSignal.
 */
export function checkCallOptions(value: unknown, known: readonly string[] = CALL_OPTION_KEYS): void {
  if (value === undefined) return
  if (typeof value !== 'object' || value === null)
    throw new InvalidArgumentError('options', `must be an object, got ${typeOf(value)}`)
  // A loop over the keys, not Object.keys: nothing allocated unless a key is unknown.
  for (const key in value) {
    if (Object.hasOwn(value, key) && !known.includes(key)) checkOptionKeys('options', value, known)
  }
  const { signal } = value as { signal?: unknown }
  if (signal !== undefined && !isAbortSignal(signal))
    throw new InvalidArgumentError('signal', `must be an AbortSignal, got ${typeOf(signal)}`)
}

/**
 * Longest delay a Node timer takes as given (2^31 - 1 ms, about 24.8 days): `setTimeout` and
 * `setInterval` turn a longer one into 1 ms, so it would fire at once.
 */
export const MAX_TIMER_MS = 2_147_483_647

/**
 * A positive integer of milliseconds that a timer waits: at most `MAX_TIMER_MS`. Anything
 * larger is refused (it would fire at once), naming the largest value.
 */
export function checkTimerMs(argument: string, value: unknown): number {
  checkDurationMs(argument, value)
  if ((value as number) > MAX_TIMER_MS) {
    throw new InvalidArgumentError(
      argument,
      `must be at most ${MAX_TIMER_MS} ms (2^31 - 1, the longest timer Node runs), got ${String(value)}`,
    )
  }
  return value as number
}

/** Edit distance between two short strings (option names). */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.length]!
}

/**
 * Refuse keys an options object does not know: a misspelt option (`perod`) would otherwise be
 * ignored without a word. Throws `InvalidArgumentError` naming the key (prefixed with `path`,
 * e.g. `lock.ttl`) and the nearest known key. Keys whose value is `undefined` are checked too.
 *
 * @param path - where the object sits, `''` for a factory's top-level options, `'lock'` for a nested one.
 * @param options - the object to check; anything but a plain object is left to the caller's own checks.
 * @param known - every key the object may have.
 * @throws InvalidArgumentError naming the first unknown key.
 *
 * @example
 * ```ts
 * checkOptionKeys('', { perod: 'day' }, ['period', 'limit'])
 * // InvalidArgumentError: perod: is not an option (did you mean 'period'?)
 * ```
 */
export function checkOptionKeys(path: string, options: unknown, known: readonly string[]): void {
  if (typeof options !== 'object' || options === null) return
  for (const key of Object.keys(options)) {
    if (known.includes(key)) continue
    let nearest: string | undefined
    let best = Number.POSITIVE_INFINITY
    for (const candidate of known) {
      const distance = editDistance(key.toLowerCase(), candidate.toLowerCase())
      if (distance < best) {
        best = distance
        nearest = candidate
      }
    }
    const hint =
      nearest !== undefined && best <= Math.max(2, Math.floor(nearest.length / 3))
        ? ` (did you mean '${nearest}'?)`
        : ''
    const name = path === '' ? key : `${path}.${key}`
    throw new InvalidArgumentError(name, `is not an option${hint}; known options: ${known.join(', ')}`)
  }
}
