import { NotSentError } from './errors.js'

export type Readiness = 'ready' | 'closed' | 'waiting'

/**
 * Waits for a client to become ready, with one listener per event on the client however many
 * calls wait (no MaxListeners warning under load). `state()` reads the client's status.
 */
export function readinessGate(
  client: { on(event: string, listener: () => void): unknown; off(event: string, listener: () => void): unknown },
  events: string[],
  state: () => Readiness,
  describe: () => string,
) {
  const waiters = new Set<() => void>()
  const wake = () => {
    for (const waiter of [...waiters]) waiter()
  }
  for (const event of events) client.on(event, wake)
  const closed = () => new NotSentError(`the client is closed (${describe()})`)

  return {
    wait(waitMs: number, signal?: AbortSignal): Promise<void> {
      const now = state()
      if (now === 'ready') return Promise.resolve()
      if (now === 'closed') return Promise.reject(closed())
      return new Promise<void>((resolve, reject) => {
        const finish = (error?: unknown) => {
          waiters.delete(check)
          clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
          if (error) reject(error)
          else resolve()
        }
        const check = () => {
          const current = state()
          if (current === 'ready') finish()
          else if (current === 'closed') finish(closed())
        }
        const onAbort = () => finish(signal?.reason)
        const timer = setTimeout(
          () => finish(new NotSentError(`the client did not become ready in time (${describe()})`)),
          Math.max(waitMs, 0),
        )
        waiters.add(check)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    },
    dispose() {
      for (const event of events) client.off(event, wake)
      wake()
    },
  }
}
