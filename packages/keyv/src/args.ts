import { InvalidArgumentError } from '@andromeda/core'
import { checkKey } from '@andromeda/core/store'

/*
 * What this package checks beyond the shared argument checks of `@andromeda/core/store`
 * (`checkApplyArgs`, `checkInteger`, `checkKey`) on the paths it runs itself: a lock token's length.
 */

/**
 * Longest lock token, in UTF-16 units: the longest id the engine takes. Its UTF-8 (at most 3 bytes
 * a unit) fits MySQL's `BLOB` (65,535 bytes), so the database never refuses a token the store took;
 * the process-atomic path takes the same tokens, so a store can move between them. The engine's own
 * tokens are UUIDs.
 */
export const MAX_TOKEN_LENGTH = 16_384

export function checkToken(name: string, token: unknown): string {
  checkKey(name, token)
  if ((token as string).length > MAX_TOKEN_LENGTH)
    throw new InvalidArgumentError(name, `must be at most ${MAX_TOKEN_LENGTH} characters`)
  return token as string
}
