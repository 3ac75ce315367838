import { AndromedaError, StoreError } from '@andromeda/core'
import type { FailureKind } from './driver.js'

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * The `StoreError` a failed call rejects with, by how the failure relates to the data: retryable
 * when nothing was applied, or when applying it twice is harmless (`idempotent`).
 */
export function toStoreError(
  error: unknown,
  kind: FailureKind,
  what: string,
  idempotent: boolean,
  attempts: number,
): unknown {
  if (AndromedaError.isInstance(error)) return error
  const detail = errorMessage(error)
  switch (kind) {
    case 'not-sent':
      return new StoreError(`${what} was not sent: ${detail}`, { retryable: true, cause: error })
    case 'conflict':
      return new StoreError(
        `${what} was rolled back on each of ${attempts} attempts (deadlock or serialization failure): ${detail}`,
        {
          retryable: true,
          cause: error,
        },
      )
    case 'rolled-back-transient':
      return new StoreError(`${what} was rolled back: ${detail}`, { retryable: true, cause: error })
    case 'rolled-back':
      return new StoreError(`${what} failed: ${detail}`, { retryable: idempotent, cause: error })
    default:
      return new StoreError(
        `${what} failed after it was sent${idempotent ? '' : '; it may have been applied'}: ${detail}`,
        {
          retryable: idempotent,
          cause: error,
        },
      )
  }
}

/** A call with no answer in time; once sent, the database rolls it back from its deadline on. */
export function timeoutError(what: string, commandTimeoutMs: number, sent: boolean, idempotent: boolean): StoreError {
  const detail = `no answer within ${commandTimeoutMs} ms`
  return sent
    ? new StoreError(
        `${what}: ${detail}; the database rolls it back from its deadline on${idempotent ? '' : ', but it may have committed just before'}`,
        {
          retryable: idempotent,
        },
      )
    : new StoreError(`${what} was not sent: ${detail}`, { retryable: true })
}

export function notPreparedError(what: string, error: unknown): StoreError {
  return new StoreError(`${what} was not sent: the database could not be prepared: ${errorMessage(error)}`, {
    retryable: true,
    cause: error,
  })
}

export const closedError = () => new StoreError('keyv SQL store is closed', { retryable: false })
