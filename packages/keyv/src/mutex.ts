/**
 * A keyed async mutex: one FIFO queue per key, kept as a promise chain.
 *
 * `lock(keys)` joins the queue of every key of one call in one synchronous step, in sorted order.
 * So of two callers that share keys, the one that arrived first is ahead in every shared queue,
 * whatever order each listed its keys in: a caller only ever waits for earlier arrivals, and
 * callers locking the same keys in reverse order can never deadlock. Waiting is bounded by
 * `waitMs`; a caller that gives up keeps its place and passes each key on the moment it gets it.
 */
export class KeyedMutex {
  /** Per key: the promise that resolves when the last queued holder releases. */
  private readonly tails = new Map<string, Promise<void>>()

  /** Number of keys with a holder or a queue (0 when idle; for tests). */
  get size(): number {
    return this.tails.size
  }

  /**
   * Wait until this caller holds every key, or reject with `onTimeout()` after `waitMs`.
   * Resolves to the release function, which frees all keys and is safe to call twice.
   */
  async lock(keys: readonly string[], waitMs: number, onTimeout: () => Error): Promise<() => void> {
    const sorted = [...new Set(keys)].sort()
    const turns = sorted.map((key) => this.enqueue(key))
    let released = false
    const releaseAll = () => {
      if (released) return
      released = true
      for (const turn of turns) void turn.granted.then((release) => release())
    }
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(onTimeout()), waitMs)
    })
    try {
      // A key is held once every earlier holder of it has released.
      for (const turn of turns) await Promise.race([turn.granted, timedOut])
      return releaseAll
    } catch (error) {
      releaseAll()
      throw error
    } finally {
      clearTimeout(timer)
    }
  }

  private enqueue(key: string): { granted: Promise<() => void> } {
    const previous = this.tails.get(key) ?? Promise.resolve()
    let release!: () => void
    const done = new Promise<void>((resolve) => {
      release = resolve
    })
    const tail = previous.then(() => done)
    this.tails.set(key, tail)
    const free = () => {
      release()
      if (this.tails.get(key) === tail) this.tails.delete(key)
    }
    return { granted: previous.then(() => free) }
  }
}
