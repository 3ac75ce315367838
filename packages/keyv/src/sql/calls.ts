import { type CallControl, NotSentError } from './driver.js'
import { type Preparation, whilePreparing } from './prepare.js'
import { closedError, timeoutError, toStoreError } from './store-errors.js'

/** Attempts of a call the database rolled back for a deadlock or a serialization failure. */
const MAX_ATTEMPTS = 4

/**
 * The database refuses a call this long before the store gives up on it, which leaves the
 * commit (and the reply) that long to arrive: a call the store reports as timed out has been
 * rolled back, or refused to start, in the database.
 */
export const commitAllowanceMs = (timeoutMs: number) => Math.min(100, Math.floor(timeoutMs / 5))

/** The store's state for sending calls: its preparation, and the calls in flight (`close()` waits for them). */
export interface Calls extends Preparation {
  readonly allowanceMs: number
  readonly inFlight: Set<Promise<unknown>>
}

/** Sends one call with the database's deadline for it (in the database clock). */
export type Send<T> = (deadline: number, control: CallControl) => Promise<T>

/**
 * One bounded call: settles within `commandTimeoutMs`, whatever the database does. The
 * database gets a deadline `allowanceMs` earlier in its own clock, past which it refuses to
 * start, stops waiting for locks and rolls back instead of committing.
 */
export function run<T>(calls: Calls, what: string, idempotent: boolean, send: Send<T>): Promise<T> {
  if (calls.closed) return Promise.reject(closedError())
  const { commandTimeoutMs } = calls
  const abort = new AbortController()
  const control: CallControl = { signal: abort.signal, dueAt: performance.now() + commandTimeoutMs, sent: false }
  const limit = timeLimit(commandTimeoutMs, () => {
    abort.abort()
    return timeoutError(what, commandTimeoutMs, control.sent, idempotent)
  })
  const settled = Promise.race([attempt(calls, what, idempotent, control, send), limit.timedOut]).finally(limit.clear)
  calls.inFlight.add(settled)
  void settled.then(
    () => calls.inFlight.delete(settled),
    () => calls.inFlight.delete(settled),
  )
  return settled
}

/** A promise that rejects with `onTimeout()` after `ms`, unless cleared first. */
function timeLimit(ms: number, onTimeout: () => unknown): { timedOut: Promise<never>; clear: () => void } {
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms)
  })
  return { timedOut, clear: () => clearTimeout(timer) }
}

/** Sends the call, again at once after a deadlock or serialization failure while time is left. */
async function attempt<T>(
  calls: Calls,
  what: string,
  idempotent: boolean,
  control: CallControl,
  send: Send<T>,
): Promise<T> {
  const preparing = whilePreparing(calls, what)
  if (preparing) await preparing
  for (let attempts = 1; ; attempts++) {
    if (control.signal.aborted) throw new NotSentError('the call was given up')
    control.sent = false
    const deadline = Math.floor(control.dueAt + calls.clock!.offsetMs) - calls.allowanceMs
    try {
      return await send(deadline, control)
    } catch (error) {
      const kind = calls.driver.classify(error, control)
      if (kind === 'conflict' && attempts < MAX_ATTEMPTS && performance.now() < control.dueAt - calls.allowanceMs)
        continue
      throw toStoreError(error, kind, what, idempotent, attempts)
    }
  }
}
