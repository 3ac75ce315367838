import { InvalidArgumentError } from '@andromeda/core'
import { expect } from 'vitest'

/*
 * Bad arguments to the store's own methods: every store answers each with an
 * `InvalidArgumentError` naming the argument, before it changes anything (the rules of
 * `@andromeda/redis`: values safe integers >= 0, lifetimes safe integers >= 1, keys and tokens
 * non-empty strings). The engine never sends these; other callers of a store may.
 */

/** Not a key: keys are non-empty strings. */
export const BAD_KEYS: readonly unknown[] = ['', 42, null, undefined, {}]
/** Not a lock token (for a method that needs one): tokens are non-empty strings. */
export const BAD_TOKENS: readonly unknown[] = ['', 42, null, undefined, { token: 'a' }]
/** Not a counter value: a safe integer >= 0. */
export const BAD_VALUES: readonly unknown[] = [
  -1,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  2 ** 60,
  '5',
  null,
  undefined,
]
/** Not a lifetime in ms: a safe integer >= 1 (`undefined` is fine where the lifetime is optional). */
export const BAD_TTLS: readonly unknown[] = [0, -5, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '100', null]

/** A case: the argument the error must name, what the call is (for the failure message), and the call. */
export type BadCall = readonly [argument: string, shown: string, call: () => unknown]

/** How a bad value reads in a failure message. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'object' && value !== null) return JSON.stringify(value)
  return String(value)
}

/**
 * The `argument` of the `InvalidArgumentError` the call rejects (or throws) with; otherwise what
 * happened, so the failure says it.
 */
export async function rejectedArgument(call: () => unknown): Promise<string> {
  try {
    await call()
  } catch (error) {
    if (InvalidArgumentError.isInstance(error)) return error.argument
    return `not an InvalidArgumentError: ${String(error)}`
  }
  return 'no error'
}

/** Every case rejects with an `InvalidArgumentError` naming its argument, one after the other. */
export async function expectEachRejected(cases: readonly BadCall[]): Promise<void> {
  for (const [argument, shown, call] of cases) expect(await rejectedArgument(call), shown).toBe(argument)
}
