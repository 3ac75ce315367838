import type { Call } from './call.js'

/**
 * Coalesces the calls on one counter each (consume, refund, give-back, read) that are issued
 * in the same tick into one script call per Cluster slot, so under concurrency a call costs a
 * fraction of a round trip. A tick's calls go out when it ends (`process.nextTick` from the
 * microtasks that issue them runs after all of them), or as soon as `maxOps` have gathered.
 */
export class Batcher {
  private readonly pending = new Map<number, Call[]>()
  private scheduled = false

  constructor(
    private readonly maxOps: number,
    /** The Cluster slot of a key (0 on a single node). */
    private readonly slotOf: (key: string) => number,
    /** Send these calls (one slot) as one script call. */
    private readonly dispatch: (calls: Call[]) => void,
  ) {}

  add(call: Call): void {
    const slot = this.slotOf(call.keys[0]!)
    let calls = this.pending.get(slot)
    if (calls === undefined) {
      calls = []
      this.pending.set(slot, calls)
    }
    calls.push(call)
    if (calls.length >= this.maxOps) {
      this.pending.delete(slot)
      this.dispatch(calls)
      return
    }
    if (!this.scheduled) {
      this.scheduled = true
      process.nextTick(this.flush)
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false
    if (this.pending.size === 0) return
    const batches = [...this.pending.values()]
    this.pending.clear()
    for (const calls of batches) this.dispatch(calls)
  }
}
