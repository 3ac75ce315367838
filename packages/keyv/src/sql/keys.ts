import { InvalidArgumentError } from '@andromeda/core'
import { createKeyMapper } from '../backend.js'

/** Longest storage key, in UTF-16 units before encoding, as on the process-atomic path. */
export const SQL_MAX_KEY_LENGTH = 255

/**
 * Maps engine keys to the bytes of the `storage_key` column: the UTF-8 of `<prefix><key>`, with
 * keys over 255 UTF-16 units shortened to their start, `#` and their SHA-256 exactly as the
 * process-atomic path shortens them (so the key of a counter is the same on both paths, and
 * counters can be copied from one to the other). At most 765 bytes.
 *
 * The column is binary (`bytea`, `VARBINARY`), so keys compare byte by byte: no collation folds
 * `abc` into `ABC` or `café` into `cafe`, and NUL is an ordinary byte. Keys must be well-formed
 * text (no lone surrogates, which UTF-8 cannot tell apart).
 */
export function createStorageKeys(prefix: string): (key: string, argument: string) => Buffer {
  const shorten = createKeyMapper(prefix, SQL_MAX_KEY_LENGTH)
  return (key, argument) => {
    if (typeof key !== 'string' || key.length === 0)
      throw new InvalidArgumentError(argument, 'must be a non-empty string')
    if (!key.isWellFormed())
      throw new InvalidArgumentError(argument, 'must be well-formed unicode (no lone surrogates)')
    return Buffer.from(shorten(key), 'utf8')
  }
}
