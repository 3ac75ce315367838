import type { Call } from './call.js'

/**
 * The calls of one store not yet settled, oldest first. Every call of a store has the same
 * timeout, so their deadlines come in start order: one timer, armed for the oldest, bounds
 * them all (instead of a timer and an AbortController per call).
 */
export class DeadlineQueue {
  private head: Call | undefined
  private tail: Call | undefined
  private timer: NodeJS.Timeout | undefined
  private idle: (() => void)[] = []
  /** Calls not settled. */
  live = 0

  constructor(
    private readonly timeoutMs: number,
    /** Called for each unsettled call once its deadline has passed. */
    private readonly onExpired: (call: Call) => void,
    /** True for a call whose expiry is already being handled (a withdrawn send). */
    private readonly isWithdrawn: (call: Call) => boolean,
  ) {}

  add(call: Call): void {
    if (this.tail === undefined) this.head = call
    else this.tail.next = call
    this.tail = call
    if (this.live++ === 0) this.timer?.ref()
    // Armed already means armed for an older call, whose deadline comes first.
    if (this.timer === undefined) this.arm(this.timeoutMs)
  }

  /** Mark a call settled. Settled calls leave from the front, so the queue holds about the calls in flight. */
  settle(call: Call): void {
    call.done = true
    let head = this.head
    while (head?.done) head = head.next
    this.head = head
    if (head === undefined) this.tail = undefined
    if (--this.live === 0) {
      // Idle: the timer no longer keeps the process alive.
      this.timer?.unref()
      if (this.idle.length > 0) for (const resolve of this.idle.splice(0)) resolve()
    }
  }

  /** Resolve once no call is in flight. */
  drained(): Promise<void> {
    if (this.live === 0) return Promise.resolve()
    return new Promise<void>((resolve) => this.idle.push(resolve))
  }

  stop(): void {
    clearTimeout(this.timer)
    this.timer = undefined
  }

  private arm(delayMs: number): void {
    this.timer = setTimeout(this.onTimer, Math.max(Math.ceil(delayMs), 1))
    if (this.live === 0) this.timer.unref()
  }

  private readonly onTimer = (): void => {
    this.timer = undefined
    const now = performance.now()
    for (let call = this.head; call !== undefined && call.dueAt <= now; call = call.next) {
      if (!call.done && !this.isWithdrawn(call)) this.onExpired(call)
    }
    let next = this.head
    while (next !== undefined && (next.done || this.isWithdrawn(next))) next = next.next
    if (next !== undefined) this.arm(next.dueAt - now)
  }
}
