import { StoreError } from '@andromeda/core'
import calculateSlot from 'cluster-key-slot'
import { Batcher } from './batcher.js'
import { Call, type Decode, Send } from './call.js'
import { DeadlineQueue } from './deadline-queue.js'
import type { Driver } from './driver.js'
import { callError, isNoScript } from './error-kind.js'
import { NoReplyError, NotSentError } from './errors.js'
import { Acknowledged, changedSomething, needsWait, type ReplicasOptions, unconfirmed } from './replicas.js'
import { SCRIPTS, type Script } from './scripts/index.js'
import { ServerClock } from './server-clock.js'

/** Slack for the millisecond truncation of the server's clock (TIME) and for rounding ours. */
const CLOCK_SLACK_MS = 2

/**
 * How the Redis store's calls travel: each is bounded by the deadline queue, batched per tick
 * (per Cluster slot) or sent on its own as one script call, and settled from the script's reply
 * (once the replicas have it, with `replicas`). A call reported as failed is never applied later.
 */
export class CallTransport {
  private closed: Promise<void> | undefined
  private readonly serverClock: ServerClock
  private readonly queue: DeadlineQueue
  private readonly batcher: Batcher

  constructor(
    private readonly driver: Driver,
    private readonly timeoutMs: number,
    maxOps: number,
    private readonly replicas: ReplicasOptions | undefined,
  ) {
    this.serverClock = new ServerClock(driver, timeoutMs)
    this.queue = new DeadlineQueue(
      timeoutMs,
      (call) => this.expire(call),
      (call) => call.send?.withdrawn === true,
    )
    const clientPrefix = driver.clientKeyPrefix
    this.batcher = new Batcher(maxOps, driver.cluster ? (key) => calculateSlot(clientPrefix + key) : () => 0, (calls) =>
      this.dispatch(new Send(SCRIPTS.batch, calls, true, this.newAbort())),
    )
  }

  /** Wait for calls in flight (each bounded by `commandTimeoutMs`), then detach from the client. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      while (this.queue.live > 0 || this.serverClock.busy) {
        if (this.queue.live > 0) await this.queue.drained()
        else await this.serverClock.calibrate().catch(() => {})
      }
      this.queue.stop()
      this.driver.dispose()
    })()
    return this.closed
  }

  /** One call of `method`: bounded by the deadline queue, then batched or sent with `script` on its own. */
  start<T>(
    method: string,
    keys: string[],
    args: string[],
    decode: Decode<T>,
    idempotent: boolean,
    signal: AbortSignal | undefined,
    batched: boolean,
    script: Script = SCRIPTS.apply,
  ): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError('the Redis store is closed', { retryable: false }))
    if (signal?.aborted) return Promise.reject(signal.reason)
    return new Promise<T>((resolve, reject) => {
      const dueAt = performance.now() + this.timeoutMs
      const call = new Call<T>(method, keys, args, decode, idempotent, signal, dueAt, resolve, reject) as Call
      this.queue.add(call)
      if (batched) this.batcher.add(call)
      else this.dispatch(new Send(script, [call], false, this.newAbort()))
    })
  }

  /** node-redis withdraws a command it has not written yet on this abort (see `Driver.withdraws`). */
  private newAbort(): AbortController | undefined {
    return this.driver.withdraws ? new AbortController() : undefined
  }

  /** Send now when connected and calibrated (the hot path: no await before it), else once ready. */
  private dispatch(send: Send): void {
    if (this.serverClock.offsetMs !== undefined && this.driver.isReady()) this.transmit(send)
    else void this.prepare(send)
  }

  /** Wait for the client and the clock calibration, each step bounded by the earliest deadline of the send's calls. */
  private async prepare(send: Send): Promise<void> {
    try {
      while (send.keepLive()) {
        if (!this.driver.isReady()) await this.driver.ready(send.dueAt() - performance.now(), send.calls[0]!.signal)
        else if (this.serverClock.offsetMs === undefined) await this.serverClock.calibrate()
        else return this.transmit(send)
      }
    } catch (error) {
      for (const call of send.calls) if (!call.done) this.rejectCall(call, this.classify(error, call))
    }
  }

  private transmit(send: Send): void {
    // A call whose signal aborted before it went out is withdrawn with its reason.
    for (const call of send.calls) if (!call.done && call.signal?.aborted) this.rejectCall(call, call.signal.reason)
    if (!send.keepLive()) return
    const dueAt = send.dueAt()
    if (!this.closed) this.serverClock.refreshIfOld(dueAt)
    // The server refuses the script from this instant on (its clock): never later than the
    // deadline queue rejects the earliest call here, so a call reported as failed is never
    // applied afterwards. A WAIT behind it needs its own time before that.
    const wait = this.waitFor(send)
    send.build(String(Math.floor(dueAt + this.serverClock.offsetMs!) - CLOCK_SLACK_MS - (wait?.timeoutMs ?? 0)))
    send.sent = true
    let sent: Promise<unknown>
    try {
      sent = this.driver.evalsha(send.script.sha, send.numKeys, send.command, send.abort?.signal, wait)
    } catch (error) {
      this.fail(send, error)
      return
    }
    sent.then(
      (reply) => this.reply(send, reply),
      (error) => this.fail(send, error),
    )
  }

  /** The replicas to wait for behind this script call: none when it only reads (see `needsWait`). */
  private waitFor(send: Send): ReplicasOptions | undefined {
    if (this.replicas === undefined) return undefined
    return needsWait(send.calls.map((call) => call.method)) ? this.replicas : undefined
  }

  private reply(send: Send, answer: unknown): void {
    let reply = answer
    let confirmed: Acknowledged['confirmed'] | undefined
    if (answer instanceof Acknowledged) {
      reply = answer.reply
      confirmed = answer.confirmed
    }
    const what = `the ${send.script.name} script`
    if (!Array.isArray(reply) || typeof reply[0] !== 'string') {
      this.rejectSend(
        send,
        () => new StoreError(`unexpected reply to ${what}: ${JSON.stringify(reply)}`, { retryable: false }),
      )
      return
    }
    if (reply[0] === 'expired') {
      this.rejectSend(
        send,
        () =>
          new StoreError(
            `${send.script.name} reached Redis after its deadline (${this.timeoutMs} ms) and was not applied`,
            { retryable: true },
          ),
      )
      return
    }
    for (let i = 1; i < reply.length; i++) if (typeof reply[i] !== 'string') reply[i] = String(reply[i])
    const calls = send.calls
    for (let i = 0; i < calls.length; i++) {
      const call = calls[i]!
      if (call.done) continue
      let value: unknown
      try {
        value = call.decode(reply as string[], send.replyAt(i))
      } catch (error) {
        this.rejectCall(call, this.classify(error, call))
        continue
      }
      if (confirmed && changedSomething(call.method, value)) {
        // Reported once the replicas have it (still bounded by the call's deadline).
        confirmed.then((shortfall) => {
          if (call.done) return
          if (shortfall) return this.rejectCall(call, unconfirmed(call.method, call.idempotent, shortfall))
          this.queue.settle(call)
          call.resolve(value)
        })
        continue
      }
      this.queue.settle(call)
      call.resolve(value)
    }
  }

  private fail(send: Send, error: unknown): void {
    if (send.calls.every((call) => call.done)) return
    if (!send.reloaded && !send.withdrawn && isNoScript(error)) {
      // NOSCRIPT: the node never ran it, so sending it in full cannot double-apply.
      send.reloaded = true
      let sent: Promise<unknown>
      try {
        sent = this.driver.eval(send.script.lua, send.numKeys, send.command, send.abort?.signal, this.waitFor(send))
      } catch (thrown) {
        this.rejectSend(send, (call) => this.classify(thrown, call))
        return
      }
      sent.then(
        (reply) => this.reply(send, reply),
        (thrown) => this.fail(send, thrown),
      )
      return
    }
    this.rejectSend(send, (call) => this.classify(error, call))
  }

  /** Fail each unsettled call of a send, with an error made for it (retryable depends on the call). */
  private rejectSend(send: Send, errorFor: (call: Call) => unknown): void {
    for (const call of send.calls) if (!call.done) this.rejectCall(call, errorFor(call))
  }

  private rejectCall(call: Call, error: unknown): void {
    this.queue.settle(call)
    call.reject(error)
  }

  private classify(error: unknown, call: Call): unknown {
    return callError(error, call, (thrown) => this.driver.notSent(thrown), this.timeoutMs)
  }

  // ------------------------------------------------------------------ deadlines

  private expire(call: Call): void {
    const send = call.send
    if (send === undefined || !send.sent) {
      this.rejectCall(call, this.classify(new NotSentError(`no connection to Redis within ${this.timeoutMs} ms`), call))
      return
    }
    // The script call carries the earliest deadline of its calls: once it passes, none of
    // them can be applied any more, so all fail together.
    const noReply = () =>
      this.rejectSend(send, (each) => this.classify(new NoReplyError('no reply before the deadline'), each))
    if (send.abort === undefined) {
      noReply()
      return
    }
    // node-redis rejects a command still in its queue on this abort (AbortError, proof it was
    // never written); that answer must win over "no reply", so ours waits one turn.
    send.withdrawn = true
    send.abort.abort()
    setImmediate(noReply)
  }
}
