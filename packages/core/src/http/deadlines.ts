/**
 * Bounds many waits of the same length with one timer: a request's wait for the quota, in the
 * middleware. Waits start in order and last alike, so their deadlines come in start order; the
 * timer is armed for the oldest (instead of a timer per request).
 */
export class Deadlines {
  private readonly queue: { dueAt: number; done: boolean; expire: () => void }[] = []
  private head = 0
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor(private readonly ms: number) {}

  /** Settle like `promise`, or reject with `onTimeout()` once `ms` has passed. */
  race<T>(promise: Promise<T>, onTimeout: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const entry = { dueAt: performance.now() + this.ms, done: false, expire: () => reject(onTimeout()) }
      this.queue.push(entry)
      if (this.timer === undefined) this.arm(this.ms)
      promise.then(
        (value) => {
          entry.done = true
          resolve(value)
        },
        (error: unknown) => {
          entry.done = true
          reject(error)
        },
      )
    })
  }

  private arm(delayMs: number): void {
    this.timer = setTimeout(this.onTimer, Math.max(Math.ceil(delayMs), 1))
    // Waiting requests keep their own sockets open; the timer alone keeps nothing alive.
    this.timer.unref?.()
  }

  private readonly onTimer = (): void => {
    this.timer = undefined
    const now = performance.now()
    // Skip what settled, expire what is due; stop at the first wait still running.
    while (this.head < this.queue.length) {
      const entry = this.queue[this.head]!
      if (!entry.done && entry.dueAt > now) break
      this.head++
      if (!entry.done) {
        entry.done = true
        entry.expire()
      }
    }
    // Drop what was handled, in bulk: the queue stays about the size of the waits in flight.
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head)
      this.head = 0
    }
    const next = this.queue[this.head]
    if (next !== undefined) this.arm(next.dueAt - now)
  }
}
