import type { ApplyOptions, ApplyResult, CounterOp, CounterSnapshot, CounterStore } from '@andromeda/core'
import { AndromedaError, checkOptionKeys, checkTimerMs, InvalidArgumentError, StoreError } from '@andromeda/core'
import calculateSlot from 'cluster-key-slot'
import { Batcher } from './batcher.js'
import { Call, type Decode, Send } from './call.js'
import type { RedisCounterStore } from './counter-store.js'
import { type Driver, NoReplyError, NotSentError, type RedisClientLike, toDriver } from './clients.js'
import { DeadlineQueue } from './deadline-queue.js'
import { Acknowledged, type ReplicasOptions, changedSomething, checkReplicas, needsWait, unconfirmed } from './replicas.js'
import { EntryError, decodeApplyEntry, decodeGetEntry, parseApply, parseFlag, parseNothing } from './replies.js'
import { SCRIPTS, type Script } from './scripts/index.js'
import { ServerClock } from './server-clock.js'

/** Options of `createRedisStore`. */
export interface RedisStoreOptions {
  /**
   * A connected client you already have: ioredis `Redis` or `Cluster` (v5.8+ / v6), or a
   * node-redis client or cluster (`redis` / `@redis/client` v5, `createClient` /
   * `createCluster`), speaking RESP2 or RESP3. The store never closes it.
   */
  client: RedisClientLike
  /**
   * Prepended to every key the store touches, e.g. `'app:'`. Must not contain `{` or `}`: the
   * hash tag of a key has to stay the engine's `{quota:id}` group. Default `''`.
   */
  prefix?: string
  /**
   * Upper bound of every call, in ms, from the call to its settlement: waiting for a
   * connection, the script and its reply. Past it the call rejects with a `StoreError`, and
   * the script, should it still reach the server, refuses to run. A timer: at most 2^31 - 1
   * (larger is refused with an `InvalidArgumentError`). Default 2000.
   */
  commandTimeoutMs?: number
  /**
   * Coalescing of calls on one counter each (consume, refund, get) issued in the same tick
   * into one script call per Cluster slot; each call is still checked and applied on its own.
   * `maxOps` caps the calls per script call (default 128). `false` sends every call on its
   * own. Default on.
   */
  batch?: false | { maxOps?: number }
  /**
   * Durability: report a change only once `count` replicas of the primary acknowledged it
   * (`WAIT count timeoutMs` on the same connection right behind each script call that can
   * change a counter; the script calls sent while a WAIT is out share the next one). A change
   * they did not acknowledge within `timeoutMs` fails its call with a `StoreError` whose
   * `cause` is a `ReplicasNotReachedError`: the change stays counted on the primary (unless a
   * failover loses it), so only a call with an idempotency key is `retryable` (a retry replays
   * it, or applies it once). Refusals and reads are reported as soon as the script answers.
   * `timeoutMs` must be smaller than `commandTimeoutMs`. Default off.
   */
  replicas?: false | ReplicasOptions
}

const DEFAULT_COMMAND_TIMEOUT_MS = 2000
const DEFAULT_MAX_BATCH_OPS = 128
/** Slack for the millisecond truncation of the server's clock (TIME) and for rounding ours. */
const CLOCK_SLACK_MS = 2
/**
 * Error replies that mean Redis did not run the command and a retry may succeed. NOREPLICAS
 * (`min-replicas-to-write`) comes at a script's first write, before anything is written;
 * MOVED and ASK come from a node that does not serve the slot (any more).
 */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|NOSCRIPT|READONLY|NOREPLICAS|MOVED|ASK)\b/
const NO_OPTIONS: ApplyOptions = {}

function checkInteger(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(name, `must be an integer in [${min}, 2^53 - 1], got ${String(value)}`)
  }
  return value
}

/** `checkInteger` for a field of `ops[i]`, as a string; the argument's name is built only on failure. */
function opInteger(ops: readonly CounterOp[], i: number, field: 'delta' | 'max' | 'min' | 'ttlMs', min: number, optional: boolean): string {
  const value = ops[i]![field]
  if (value === undefined && optional) return ''
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) checkInteger(`ops[${i}].${field}`, value, min)
  return String(value)
}

function checkKey(name: string, key: unknown): string {
  if (typeof key !== 'string' || key.length === 0) throw new InvalidArgumentError(name, 'must be a non-empty string')
  return key
}

/** An op's hold or settle, as script slots: kind ('' | 'h' | 's'), hold id, holdMs or units to keep. */
function holdArgs(op: CounterOp, i: number): { kind: '' | 'h' | 's'; id: string; value: string } {
  const { hold, settle } = op
  if (hold === undefined && settle === undefined) return { kind: '', id: '', value: '' }
  if (hold !== undefined && settle !== undefined) throw new InvalidArgumentError(`ops[${i}]`, 'cannot both hold and settle')
  if (hold !== undefined) {
    if (!(op.delta > 0)) throw new InvalidArgumentError(`ops[${i}].delta`, 'must be > 0 to hold units')
    return { kind: 'h', id: checkKey(`ops[${i}].hold.id`, hold.id), value: String(checkInteger(`ops[${i}].hold.holdMs`, hold.holdMs, 1)) }
  }
  if (op.delta !== 0) throw new InvalidArgumentError(`ops[${i}].delta`, 'must be 0 to settle a hold')
  return { kind: 's', id: checkKey(`ops[${i}].settle.id`, settle!.id), value: String(checkInteger(`ops[${i}].settle.keep`, settle!.keep, 0)) }
}

const optionalInteger = (name: string, value: number | undefined, min: number) =>
  value === undefined ? '' : String(checkInteger(name, value, min))

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function isReplyError(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  return (
    error instanceof EntryError ||
    error.name === 'ReplyError' ||
    ['ReplyError', 'ErrorReply', 'SimpleError', 'BlobError'].includes(error.constructor.name)
  )
}

/**
 * NOSCRIPT, also as the last error of an ioredis Cluster that gave up redirecting
 * ("Too many Cluster redirections. Last error: ReplyError: NOSCRIPT ...", when it sent the
 * command itself): that node did not run it either.
 */
const NO_SCRIPT = /^(?:Too many Cluster redirections\. Last error: (?:ReplyError: )?)?NOSCRIPT\b/

function isNoScript(error: unknown): boolean {
  return error instanceof Error && NO_SCRIPT.test(error.message)
}

/**
 * A `CounterStore` on Redis: every call is one Lua script, atomic for every process
 * (`capabilities: { shared: true, atomic: 'global' }`), on a single node or a Redis Cluster.
 *
 * - Calls on one counter each (consume, refund, get) issued in the same tick go out together
 *   as one script call per Cluster slot (`batch`); each is checked and applied on its own, so a
 *   refused call changes nothing and does not affect the others. Under concurrency a consume
 *   costs a fraction of a round trip; alone, exactly one.
 * - Scripts go out as EVALSHA; on `NOSCRIPT` (a fresh or flushed node, per node on a Cluster)
 *   the same script call is sent once as EVAL, which loads it
 *   (https://redis.io/docs/latest/commands/evalsha/).
 * - Keys are the engine's (`{quota:id}:usage...`), behind `prefix`; the counter, lock and
 *   idempotency records of one id share the hash tag, so they sit in one Cluster slot
 *   (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags).
 *   `capabilities.canApplyTogether(keys)` is true when all keys map to one slot (always on a
 *   single node); the engine runs its saga otherwise.
 * - Bounded failure: every call settles within `commandTimeoutMs` (one deadline queue and
 *   one timer per store). Each script call carries the earliest deadline of its calls in the
 *   server's clock (calibrated with `TIME` against this process's monotonic clock, refreshed
 *   every minute) and refuses to run once it has passed, so a call rejected for a timeout can
 *   never be applied later by a client that queued or resent it. A script call that fails
 *   fails each of its calls with a `StoreError`.
 *
 * - With `replicas`, a change is reported only once that many replicas have it (a WAIT behind
 *   each script call that can change a counter), so a failover cannot take back a granted
 *   unit; see `ReplicasOptions`. On an ioredis `Cluster`, script calls go to the slot's
 *   primary over that node's own connection: the Cluster never sends one a second time.
 *
 * @param options - `client` (required), `prefix`, `commandTimeoutMs`, `batch`, `replicas`; see `RedisStoreOptions`.
 * @returns a `RedisCounterStore`; its `close()` waits for calls in flight and detaches from the
 *   client, which stays open (it is yours).
 * @throws InvalidArgumentError when `client` is not a recognised Redis client, `prefix`
 *   contains `{` or `}`, `commandTimeoutMs` is not a positive integer or `batch.maxOps` not
 *   one, or `replicas` is not `false` or `{ count >= 1, timeoutMs in [1, commandTimeoutMs) }`.
 *   Methods reject with `StoreError` when Redis fails (`retryable: true` only when the
 *   call surely was not applied, or cannot double-count if sent again) and with
 *   `InvalidArgumentError` for out-of-contract input (non-integers, values beyond 2^53 - 1,
 *   keys in several Cluster slots).
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { createQuota } from '@andromeda/core'
 * import { createRedisStore } from '@andromeda/redis'
 *
 * const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
 * client.on('error', (error) => console.error('redis', error.message))
 * const store = createRedisStore({ client, prefix: 'shop:' })
 * const vouchers = createQuota({ name: 'voucher', store, limit: 100 })
 * const { allowed } = await vouchers.consume('SUMMER24')
 * await store.close()
 * client.disconnect()
 * ```
 */
export function createRedisStore(options: RedisStoreOptions): RedisCounterStore {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'must be an object')
  checkOptionKeys('', options, ['client', 'prefix', 'commandTimeoutMs', 'batch', 'replicas'])
  const driver = toDriver(options.client)
  if (!driver) {
    throw new InvalidArgumentError('client', 'must be an ioredis Redis/Cluster or a node-redis client/cluster')
  }
  const prefix = options.prefix ?? ''
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    throw new InvalidArgumentError('prefix', 'must be a string without "{" or "}" (they would change the keys\' hash tag)')
  }
  // A timer bounds every call: longer than 2^31 - 1 ms it would fire at once.
  const timeoutMs = checkTimerMs('commandTimeoutMs', options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS)
  const batch = options.batch ?? {}
  if (batch !== false && (typeof batch !== 'object' || batch === null)) {
    throw new InvalidArgumentError('batch', 'must be false or { maxOps?: number }')
  }
  if (batch !== false) checkOptionKeys('batch', batch, ['maxOps'])
  const maxOps = batch === false ? 1 : (batch.maxOps ?? DEFAULT_MAX_BATCH_OPS)
  if (!Number.isSafeInteger(maxOps) || maxOps < 1) {
    throw new InvalidArgumentError('batch.maxOps', `must be a positive integer, got ${String(maxOps)}`)
  }
  const replicas = checkReplicas(options.replicas, timeoutMs)
  if (replicas && !driver.waits) {
    throw new InvalidArgumentError('replicas', 'this ioredis Cluster does not let WAIT follow a script on its node (keyPrefix differs from redisOptions.keyPrefix)')
  }
  return new RedisStore(driver, prefix, timeoutMs, maxOps, replicas)
}

class RedisStore implements RedisCounterStore {
  readonly capabilities: CounterStore['capabilities']
  private closed: Promise<void> | undefined
  private readonly serverClock: ServerClock
  private readonly queue: DeadlineQueue
  private readonly batcher: Batcher

  constructor(
    private readonly driver: Driver,
    private readonly prefix: string,
    private readonly timeoutMs: number,
    maxOps: number,
    private readonly replicas: ReplicasOptions | undefined,
  ) {
    const slotPrefix = driver.clientKeyPrefix + prefix
    this.capabilities = {
      shared: true,
      atomic: 'global',
      canApplyTogether: (keys) => {
        if (!driver.cluster || keys.length <= 1) return true
        const slot = calculateSlot(slotPrefix + keys[0]!)
        return keys.every((key) => calculateSlot(slotPrefix + key) === slot)
      },
    }
    this.serverClock = new ServerClock(driver, timeoutMs)
    this.queue = new DeadlineQueue(
      timeoutMs,
      (call) => this.expire(call),
      (call) => call.send?.withdrawn === true,
    )
    const clientPrefix = driver.clientKeyPrefix
    this.batcher = new Batcher(
      maxOps,
      driver.cluster ? (key) => calculateSlot(clientPrefix + key) : () => 0,
      (calls) => this.dispatch(new Send(SCRIPTS.batch, calls, true, this.newAbort())),
    )
  }

  // ------------------------------------------------------------------ contract

  apply(ops: readonly CounterOp[], options: ApplyOptions = NO_OPTIONS): Promise<ApplyResult> {
    // Not `async`: one promise per call, the call's own. Bad input still rejects.
    try {
      if (!Array.isArray(ops)) throw new InvalidArgumentError('ops', 'must be an array')
      if (ops.length === 1) return this.applyOne(ops[0]!, options)
      return this.applyMany(ops, options)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  seed(key: string, value: number, ttlMs?: number): Promise<boolean> {
    return this.runOwn(SCRIPTS.seed, key, parseFlag, () => [String(checkInteger('value', value, 0)), optionalInteger('ttlMs', ttlMs, 1)])
  }

  get(key: string): Promise<CounterSnapshot | undefined> {
    try {
      const counter = this.prefix + checkKey('key', key)
      return this.start('get', [counter], ['g', '', '', '', '', ''], decodeGetEntry, true, undefined, true)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  set(key: string, value: number, ttlMs?: number): Promise<void> {
    return this.runOwn(SCRIPTS.set, key, parseNothing, () => [String(checkInteger('value', value, 0)), optionalInteger('ttlMs', ttlMs, 1)])
  }

  delete(key: string): Promise<void> {
    return this.runOwn(SCRIPTS.delete, key, parseNothing, () => [])
  }

  acquireLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    return this.runOwn(SCRIPTS.acquireLock, key, parseFlag, () => [checkKey('token', token), String(checkInteger('ttlMs', ttlMs, 1))])
  }

  releaseLock(key: string, token: string): Promise<boolean> {
    return this.runOwn(SCRIPTS.releaseLock, key, parseFlag, () => [checkKey('token', token)])
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

  // ------------------------------------------------------------------ building calls

  /** One op: a call of the batch script (see `scripts/batch.ts` for its slots). */
  private applyOne(op: CounterOp, options: ApplyOptions): Promise<ApplyResult> {
    const ops = [op]
    const key = op.key
    if (typeof key !== 'string' || key.length === 0) checkKey('ops[0].key', key)
    if (op.ifMissing !== 'create' && op.ifMissing !== 'report') throw new InvalidArgumentError('ops[0].ifMissing', `must be 'create' or 'report'`)
    const delta = opInteger(ops, 0, 'delta', -Number.MAX_SAFE_INTEGER, false)
    const sign = op.delta
    // Only one bound can refuse an op (max an increment, min a decrement): one slot.
    const bound = sign > 0 ? opInteger(ops, 0, 'max', 0, true) : sign < 0 ? opInteger(ops, 0, 'min', -Number.MAX_SAFE_INTEGER, true) : ''
    const ttl = opInteger(ops, 0, 'ttlMs', 1, true)
    const hold = holdArgs(op, 0)
    const { idempotencyKey, clearIdempotencyKey, signal } = options
    const keys = [this.prefix + key]
    let shape = 'a'
    let recordTtl = ''
    if (idempotencyKey !== undefined) {
      keys.push(this.prefix + checkKey('idempotencyKey', idempotencyKey))
      shape += 'r'
      recordTtl = optionalInteger('idempotencyTtlMs', options.idempotencyTtlMs ?? 86_400_000, 1)
    }
    if (clearIdempotencyKey !== undefined) {
      keys.push(this.prefix + checkKey('clearIdempotencyKey', clearIdempotencyKey))
      shape += 'c'
    }
    if (keys.length > 1) this.checkOneSlot(keys)
    const args = [shape + hold.kind, delta, bound, ttl, op.ifMissing === 'create' ? 'c' : 'r', recordTtl]
    if (hold.kind !== '') args.push(hold.id, hold.value)
    // Sending it again is harmless when it changes nothing, or when a record would replay it
    // (a settle replays by itself).
    const idempotent = idempotencyKey !== undefined || (sign === 0 && hold.kind !== 'h')
    return this.start('apply', keys, args, decodeApplyEntry, idempotent, signal, true)
  }

  /** Several ops, all or nothing: a call of the apply script. */
  private applyMany(ops: readonly CounterOp[], options: ApplyOptions): Promise<ApplyResult> {
    const n = ops.length
    const keys: string[] = []
    const opArgs: string[] = []
    let writes = false
    for (let i = 0; i < n; i++) {
      const op = ops[i]!
      const key = op.key
      if (typeof key !== 'string' || key.length === 0) checkKey(`ops[${i}].key`, key)
      keys.push(this.prefix + key)
      if (op.ifMissing !== 'create' && op.ifMissing !== 'report') {
        throw new InvalidArgumentError(`ops[${i}].ifMissing`, `must be 'create' or 'report'`)
      }
      const delta = opInteger(ops, i, 'delta', -Number.MAX_SAFE_INTEGER, false)
      const max = opInteger(ops, i, 'max', 0, true)
      const min = opInteger(ops, i, 'min', -Number.MAX_SAFE_INTEGER, true)
      const sign = op.delta as number
      const hold = holdArgs(op, i)
      if (sign !== 0 || hold.kind === 'h') writes = true
      opArgs.push(delta, sign > 0 ? max : sign < 0 ? min : '', opInteger(ops, i, 'ttlMs', 1, true), op.ifMissing === 'create' ? 'c' : 'r')
      opArgs.push(hold.kind, hold.id, hold.value)
    }
    if (n === 0) return Promise.resolve({ ok: true, values: [], ttlMs: [] })
    const { idempotencyKey, clearIdempotencyKey, signal } = options
    if (idempotencyKey !== undefined) keys.push(this.prefix + checkKey('idempotencyKey', idempotencyKey))
    if (clearIdempotencyKey !== undefined) keys.push(this.prefix + checkKey('clearIdempotencyKey', clearIdempotencyKey))
    this.checkOneSlot(keys)
    const recordTtl = idempotencyKey === undefined ? '' : optionalInteger('idempotencyTtlMs', options.idempotencyTtlMs ?? 86_400_000, 1)
    const args = [String(n), recordTtl, ...opArgs]
    const decode: Decode<ApplyResult> = (reply) => parseApply(reply, n)
    return this.start('apply', keys, args, decode, idempotencyKey !== undefined || !writes, signal, false)
  }

  /** A method with a script of its own on one key; these never double-count if sent again. */
  private runOwn<T>(script: Script, key: string, decode: Decode<T>, args: () => string[]): Promise<T> {
    try {
      // Arguments are checked in the order the methods name them: key first.
      const keys = [this.prefix + checkKey('key', key)]
      return this.start(script.name, keys, args(), decode, true, undefined, false, script)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  private checkOneSlot(keys: string[]): void {
    if (!this.driver.cluster) return
    const clientPrefix = this.driver.clientKeyPrefix
    const slot = calculateSlot(clientPrefix + keys[0]!)
    for (let i = 1; i < keys.length; i++) {
      if (calculateSlot(clientPrefix + keys[i]!) !== slot) {
        throw new InvalidArgumentError('ops', 'keys map to several Redis Cluster slots; check capabilities.canApplyTogether() first')
      }
    }
  }

  // ------------------------------------------------------------------ one bounded call

  private start<T>(
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
      this.rejectSend(send, () => new StoreError(`unexpected reply to ${what}: ${JSON.stringify(reply)}`, { retryable: false }))
      return
    }
    if (reply[0] === 'expired') {
      this.rejectSend(
        send,
        () => new StoreError(`${send.script.name} reached Redis after its deadline (${this.timeoutMs} ms) and was not applied`, { retryable: true }),
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
    if (AndromedaError.isInstance(error)) return error
    const signal = call.signal
    if (signal?.aborted && error === signal.reason) return error
    const what = `Redis ${call.method}`
    if (this.driver.notSent(error)) {
      return new StoreError(`${what} was not sent: ${errorMessage(error)}`, { retryable: true, cause: error })
    }
    if (error instanceof NoReplyError) {
      return new StoreError(`${what} got no reply within ${this.timeoutMs} ms${call.idempotent ? '' : '; it may have been applied'}`, {
        retryable: call.idempotent,
        cause: error,
      })
    }
    if (isReplyError(error)) {
      // Redis answered with an error: the scripts check everything of a call before its first
      // write, so nothing of it was applied; only transient states are worth a retry.
      return new StoreError(`${what} failed: ${errorMessage(error)}`, {
        retryable: call.idempotent || TRANSIENT_REPLY.test(errorMessage(error)),
        cause: error,
      })
    }
    // A transport error after the command may have been written: applied or not, unknown.
    return new StoreError(`${what} failed: ${errorMessage(error)}`, { retryable: call.idempotent, cause: error })
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
    const noReply = () => this.rejectSend(send, (each) => this.classify(new NoReplyError('no reply before the deadline'), each))
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
