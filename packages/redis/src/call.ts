import type { Script } from './scripts/index.js'

/** Turns the reply of a script call into one call's result; `at` is where the call's part starts. */
export type Decode<T> = (reply: string[], at: number) => T

/** One store method's call, from the method to its settlement. */
export class Call<T = unknown> {
  /** The call that started next: the store's deadline queue, in start order. */
  next: Call | undefined = undefined
  /** Settled; whatever arrives later (a reply, a NOSCRIPT) is dropped. */
  done = false
  /** The script call that carries it, once it is in one. */
  send: Send | undefined = undefined

  constructor(
    /** The contract method, for messages. */
    readonly method: string,
    /** Its keys, prefixed. */
    readonly keys: string[],
    /** Its arguments after the deadline: the whole ARGV tail of its own script, or its six batch slots. */
    readonly args: string[],
    readonly decode: Decode<T>,
    /** Sending it twice cannot count twice (it changes nothing, or a record replays it). */
    readonly idempotent: boolean,
    readonly signal: AbortSignal | undefined,
    /** `performance.now()` at which the call must have settled. */
    readonly dueAt: number,
    readonly resolve: (value: T) => void,
    readonly reject: (error: unknown) => void,
  ) {}
}

/**
 * One script call on the wire: a call of its own script, or a batch of calls on one counter
 * each (the batch script), all on one Cluster slot.
 */
export class Send {
  /** Handed to the client: it may run from here on, so a timeout can no longer say "not sent". */
  sent = false
  /** Sent again as EVAL after NOSCRIPT. */
  reloaded = false
  /** Past its deadline, its node-redis abort fired: settles as soon as node-redis has answered that. */
  withdrawn = false
  /** KEYS then ARGV, built when it goes out (calls that settled meanwhile are left out). */
  command: string[] = []
  numKeys = 0

  constructor(
    readonly script: Script,
    /** The calls it carries, in the order of their parts in the command and the reply. */
    public calls: Call[],
    /** True for the batch script (a count and six slots per call); false for a call's own script. */
    readonly batched: boolean,
    readonly abort: AbortController | undefined,
  ) {
    for (const call of calls) call.send = this
  }

  /** Drop the calls that settled before it went out; true when some are left to send. */
  keepLive(): boolean {
    if (this.calls.some((call) => call.done)) this.calls = this.calls.filter((call) => !call.done)
    return this.calls.length > 0
  }

  /** Earliest deadline of its calls: the script refuses to run from then on. */
  dueAt(): number {
    let due = Number.POSITIVE_INFINITY
    for (const call of this.calls) if (call.dueAt < due) due = call.dueAt
    return due
  }

  /** Build KEYS and ARGV, with `deadline` (the server's clock) as ARGV[1]. */
  build(deadline: string): void {
    const command: string[] = []
    for (const call of this.calls) for (const key of call.keys) command.push(key)
    this.numKeys = command.length
    command.push(deadline)
    if (this.batched) command.push(String(this.calls.length))
    for (const call of this.calls) for (const arg of call.args) command.push(arg)
    this.command = command
  }

  /** Where call `index`'s part of the reply starts. */
  replyAt(index: number): number {
    return this.batched ? 1 + 3 * index : 0
  }
}
