/** Reject with the signal's reason as soon as it aborts; otherwise settle like `promise`. */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise
  if (signal.aborted) {
    // This caller stops waiting; the work goes on, and its failure must not go unhandled.
    promise.catch(() => {})
    return Promise.reject(signal.reason)
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

/** Sleep `ms`, waking early with the signal's reason if it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return abortable(new Promise<void>((resolve) => setTimeout(resolve, ms)), signal)
}

/** Call a hook, ignoring whatever it throws or rejects with: a hook never changes an outcome. */
export function callHook<E>(hook: ((event: E) => unknown) | undefined, event: E): void {
  if (!hook) return
  try {
    const returned = hook(event)
    if (returned && typeof (returned as Promise<unknown>).catch === 'function') {
      ;(returned as Promise<unknown>).catch(() => {})
    }
  } catch {
    // dropped on purpose: observers must not break the operation they observe
  }
}

/** Settle like `promise`, or reject with `onTimeout()` after `ms` if it has not settled by then. */
export function withDeadline<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(onTimeout()), ms)
    promise.then(
      (value) => {
        clearTimeout(timer)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(timer)
        reject(error)
      },
    )
  })
}
