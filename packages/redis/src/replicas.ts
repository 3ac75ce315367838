import { InvalidArgumentError, StoreError } from '@andromeda/core'

/**
 * The durability option: a write is reported only once `count` replicas have it.
 *
 * Redis replicates asynchronously: a primary answers a write before its replicas have it, and
 * a replica promoted after the primary dies lacks what it had not received yet (units counted,
 * then forgotten: sold twice). `WAIT count timeoutMs`, sent right behind each script call on
 * the same connection, answers how many replicas acknowledged every write that connection made
 * so far (https://redis.io/docs/latest/commands/wait/). A failover promotes the most up to date
 * replica (Cluster, https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#replica-rank;
 * Sentinel, https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/#replica-selection-and-priority),
 * so with one replica per primary, `count: 1` makes every reported write survive a failover.
 *
 * @example
 * ```ts
 * const store = createRedisStore({ client: cluster, replicas: { count: 1, timeoutMs: 500 } })
 * const vouchers = createQuota({ name: 'voucher', store, limit: 100 })
 * // With an idempotency key, a grant the replicas did not confirm is retried by the engine.
 * await vouchers.consume('SUMMER24', 1, { idempotencyKey: orderId })
 * ```
 */
export interface ReplicasOptions {
  /** Replicas that must acknowledge a write before it is reported: an integer >= 1. */
  count: number
  /**
   * How long the primary waits for them (WAIT's timeout), in ms: an integer >= 1, smaller than
   * `commandTimeoutMs` (the call's bound covers the script and the WAIT).
   */
  timeoutMs: number
}

/** Validate the `replicas` option; undefined when it is off. */
export function checkReplicas(value: unknown, commandTimeoutMs: number): ReplicasOptions | undefined {
  if (value === undefined || value === false) return undefined
  if (typeof value !== 'object' || value === null) {
    throw new InvalidArgumentError('replicas', 'must be false or { count: number, timeoutMs: number }')
  }
  for (const key of Object.keys(value)) {
    if (key !== 'count' && key !== 'timeoutMs')
      throw new InvalidArgumentError(`replicas.${key}`, 'is not an option (count, timeoutMs)')
  }
  const { count, timeoutMs } = value as Partial<ReplicasOptions>
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 1) {
    throw new InvalidArgumentError('replicas.count', `must be an integer >= 1, got ${String(count)}`)
  }
  if (
    typeof timeoutMs !== 'number' ||
    !Number.isSafeInteger(timeoutMs) ||
    timeoutMs < 1 ||
    timeoutMs >= commandTimeoutMs
  ) {
    throw new InvalidArgumentError(
      'replicas.timeoutMs',
      `must be an integer in [1, commandTimeoutMs - 1] (ms; commandTimeoutMs is ${commandTimeoutMs}), got ${String(timeoutMs)}`,
    )
  }
  return { count, timeoutMs }
}

const REPLICAS_MARKER = Symbol.for('@andromeda/redis.replicas-not-reached')

/**
 * The `cause` of the `StoreError` of a call whose write the primary applied but fewer than
 * `required` replicas acknowledged within `timeoutMs` (or the WAIT got no answer: then
 * `acknowledged` is undefined). The change stays counted on the primary unless a failover
 * loses it; the `StoreError` is `retryable` only when the call had an idempotency key.
 *
 * @example
 * ```ts
 * try {
 *   await vouchers.consume(code)
 * } catch (error) {
 *   if (StoreError.isInstance(error) && ReplicasNotReachedError.isInstance(error.cause)) {
 *     // counted on the primary, not (yet) on error.cause.required replicas
 *   }
 *   throw error
 * }
 * ```
 */
export class ReplicasNotReachedError extends Error {
  override name = 'ReplicasNotReachedError'
  declare readonly [REPLICAS_MARKER]: true

  constructor(
    /** Replicas that acknowledged, as WAIT answered; undefined when WAIT itself failed. */
    readonly acknowledged: number | undefined,
    readonly required: number,
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(
      acknowledged === undefined
        ? `WAIT ${required} ${timeoutMs} got no answer`
        : `${acknowledged} of ${required} replica(s) acknowledged within ${timeoutMs} ms`,
      options,
    )
    Object.defineProperty(this, REPLICAS_MARKER, { value: true })
  }

  /**
   * True for a `ReplicasNotReachedError` from this or any other installed copy of
   * `@andromeda/redis` (`instanceof` fails across copies); a plain function, safe as a callback.
   */
  static isInstance = (value: unknown): value is ReplicasNotReachedError =>
    typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[REPLICAS_MARKER] === true
}

/**
 * A script call's reply, as soon as it arrives, with the outcome of the WAIT behind it still
 * to come: `confirmed` resolves to undefined when enough replicas acknowledged, else to why
 * not (it never rejects). Calls that changed nothing need not wait for it.
 */
export class Acknowledged {
  constructor(
    readonly reply: unknown,
    readonly confirmed: Promise<ReplicasNotReachedError | undefined>,
  ) {}
}

/**
 * Combine a script call and the WAIT written right behind it on the same connection. When
 * the script fails, its error is the answer (the WAIT's is dropped); when it succeeds, the
 * answer is an `Acknowledged`.
 */
export function acknowledged(
  script: Promise<unknown>,
  wait: Promise<unknown>,
  replicas: ReplicasOptions,
): Promise<Acknowledged> {
  const confirmed = wait.then(
    (count) => {
      const acked = Number(count)
      return acked >= replicas.count
        ? undefined
        : new ReplicasNotReachedError(acked, replicas.count, replicas.timeoutMs)
    },
    (error: unknown) => new ReplicasNotReachedError(undefined, replicas.count, replicas.timeoutMs, { cause: error }),
  )
  return script.then((reply) => new Acknowledged(reply, confirmed))
}

/** The arguments of WAIT. */
export const waitArgs = (replicas: ReplicasOptions): [string, string] => [
  String(replicas.count),
  String(replicas.timeoutMs),
]

/**
 * The WAITs of one connection. A WAIT blocks its connection until it returns: a script sent
 * behind it runs only then. And one WAIT covers every write made on its connection before it.
 * So while one is out, the script calls sent meanwhile share the next one, sent as soon as it
 * returns (a group commit): one WAIT per round trip of the replication link per connection,
 * however many calls, instead of one blocking the connection per script call.
 */
export class WaitChain {
  private out = false
  private next: { resolve(value: unknown): void; reject(error: unknown): void }[] = []

  constructor(
    private readonly send: () => Promise<unknown>,
    /**
     * How long a WAIT may stay unanswered before the chain counts it as lost (ms): a client
     * may never settle a command whose connection dropped (ioredis with
     * `autoResendUnfulfilledCommands: false` forgets it), and the chain must not wait forever.
     */
    private readonly lostAfterMs: number,
  ) {}

  /** The answer of a WAIT sent after every script already written on the connection. */
  wait(): Promise<unknown> {
    if (this.out) return new Promise((resolve, reject) => this.next.push({ resolve, reject }))
    return this.start()
  }

  private start(): Promise<unknown> {
    this.out = true
    let sent: Promise<unknown>
    try {
      sent = this.send()
    } catch (error) {
      sent = Promise.reject(error)
    }
    let timer: ReturnType<typeof setTimeout> | undefined
    sent = Promise.race([
      sent,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`WAIT got no answer within ${this.lostAfterMs} ms`)),
          this.lostAfterMs,
        )
        timer.unref?.()
      }),
    ]).finally(() => clearTimeout(timer))
    sent.then(
      () => this.release(undefined),
      (error: unknown) => this.release(error),
    )
    return sent
  }

  private release(error: unknown): void {
    this.out = false
    const group = this.next.splice(0)
    if (group.length === 0) return
    // A WAIT that failed (the connection dropped, the node is a replica now) confirms nothing
    // for the scripts behind it either, and a WAIT on a new connection would cover none of them.
    if (error !== undefined) {
      for (const waiter of group) waiter.reject(error)
      return
    }
    this.start().then(
      (value) => {
        for (const waiter of group) waiter.resolve(value)
      },
      (failure: unknown) => {
        for (const waiter of group) waiter.reject(failure)
      },
    )
  }
}

/** Beyond WAIT's own timeout, how long its answer may take to come back before it counts as lost (ms). */
const WAIT_LOST_AFTER_MS = 1000

/**
 * One `WaitChain` per connection object, made on first use. A store's `replicas` never
 * change, and each store has chains of its own.
 */
export function chainsFor<T extends object>(
  send: (connection: T, args: [string, string]) => Promise<unknown>,
): (connection: T, replicas: ReplicasOptions) => WaitChain {
  const chains = new WeakMap<T, WaitChain>()
  return (connection, replicas) => {
    let chain = chains.get(connection)
    if (!chain) {
      const args = waitArgs(replicas)
      chain = new WaitChain(() => send(connection, args), replicas.timeoutMs + WAIT_LOST_AFTER_MS)
      chains.set(connection, chain)
    }
    return chain
  }
}

/**
 * Methods whose script calls need no WAIT. A read changes nothing. A seed that a failover
 * loses leaves the counter missing, and the engine loads it again from the system of record
 * (a write after it on the same connection waits for it anyway); a refused seed changes
 * nothing. A loader lock that a failover loses makes its load's seed refused (the load reads
 * again), and a release it loses leaves the lock to expire: neither counts a unit wrongly.
 */
const UNWAITED = new Set(['get', 'seed', 'acquireLock', 'releaseLock'])

/** Whether a script call carrying calls of these methods needs a WAIT behind it. */
export function needsWait(methods: Iterable<string>): boolean {
  for (const method of methods) if (!UNWAITED.has(method)) return true
  return false
}

/**
 * Whether a call's result reports a change: what a WAIT has to confirm. A refusal, a read and a
 * lock or seed that did not take report none. A replay does: it reports an earlier call's change
 * (a consume's record, a settled hold), which the replicas may not have yet when the retry comes
 * because that earlier call's confirmation failed; reporting it unconfirmed would let a failover
 * take back what the caller was told is kept.
 *
 * A refused call whose give-back met a missing counter reports none either, though it deleted
 * that counter's loader lock: its answer does not wait (the WAIT behind its script call still
 * carries the delete to the replicas). A failover that loses the delete lets a load in progress
 * seed usage that may still count the given-back units: the counter counts too many until it is
 * reloaded or reset, as with a give-back a failover loses: an undersell, never an oversell.
 */
export function changedSomething(method: string, value: unknown): boolean {
  if (method === 'get') return false
  if (typeof value === 'boolean') return value
  if (typeof value === 'object' && value !== null && 'ok' in value) return (value as { ok: boolean }).ok
  return true
}

/**
 * The error of a call whose change the primary applied but the replicas did not confirm. The
 * change stays counted on the primary; it is lost only if the primary fails over before a
 * replica gets it. A call with an idempotency key may be retried: the retry replays the record
 * if it survived, or applies the call once if it was lost. Without a key a retry could count
 * twice, so it is not retryable.
 */
export function unconfirmed(method: string, idempotent: boolean, shortfall: ReplicasNotReachedError): StoreError {
  const next = idempotent
    ? 'retry it (same idempotency key): the retry replays it, or applies it once if a failover lost it'
    : 'it stays counted unless a failover loses it; a retry could count it twice'
  return new StoreError(
    `Redis ${method} was applied on the primary but not confirmed by its replicas (${shortfall.message}): ${next}`,
    {
      retryable: idempotent,
      cause: shortfall,
    },
  )
}
