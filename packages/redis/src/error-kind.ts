import { AndromedaError, StoreError } from '@andromeda/core'
import type { Call } from './call.js'
import { NoReplyError } from './errors.js'
import { EntryError } from './replies.js'

/**
 * Error replies that mean Redis did not run the command and a retry may succeed. NOREPLICAS
 * (`min-replicas-to-write`) comes at a script's first write, before anything is written;
 * MOVED and ASK come from a node that does not serve the slot (any more).
 */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|NOSCRIPT|READONLY|NOREPLICAS|MOVED|ASK)\b/

/**
 * NOSCRIPT, also as the last error of an ioredis Cluster that gave up redirecting
 * ("Too many Cluster redirections. Last error: ReplyError: NOSCRIPT ...", when it sent the
 * command itself): that node did not run it either.
 */
const NO_SCRIPT = /^(?:Too many Cluster redirections\. Last error: (?:ReplyError: )?)?NOSCRIPT\b/

export function isNoScript(error: unknown): boolean {
  return error instanceof Error && NO_SCRIPT.test(error.message)
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function isReplyError(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  return (
    error instanceof EntryError ||
    error.name === 'ReplyError' ||
    ['ReplyError', 'ErrorReply', 'SimpleError', 'BlobError'].includes(error.constructor.name)
  )
}

/**
 * The error a call rejects with for what the client or Redis threw: ours as they are, the
 * call's own abort reason as it is, anything else a `StoreError` that is `retryable` only
 * when the call surely was not applied or cannot count twice if sent again.
 */
export function callError(
  error: unknown,
  call: Call,
  notSent: (error: unknown) => boolean,
  timeoutMs: number,
): unknown {
  if (AndromedaError.isInstance(error)) return error
  const signal = call.signal
  if (signal?.aborted && error === signal.reason) return error
  const what = `Redis ${call.method}`
  if (notSent(error)) {
    return new StoreError(`${what} was not sent: ${errorMessage(error)}`, { retryable: true, cause: error })
  }
  if (error instanceof NoReplyError) {
    return new StoreError(
      `${what} got no reply within ${timeoutMs} ms${call.idempotent ? '' : '; it may have been applied'}`,
      {
        retryable: call.idempotent,
        cause: error,
      },
    )
  }
  if (isReplyError(error)) {
    // Redis answered with an error: the scripts check everything of a call before its first
    // write, so nothing of it was applied; only transient states are worth a retry.
    return new StoreError(`${what} failed: ${errorMessage(error)}`, {
      retryable: call.idempotent || TRANSIENT_REPLY.test(errorMessage(error)),
      cause: error,
    })
  }
  // A transport error after the command may have been written: applied or not, unknown.
  return new StoreError(`${what} failed: ${errorMessage(error)}`, { retryable: call.idempotent, cause: error })
}
