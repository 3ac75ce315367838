import type { ApplyOptions, ApplyResult, CounterOp, CounterSnapshot, CounterStore } from '@andromeda/core'
import { AndromedaError, InvalidArgumentError, StoreError } from '@andromeda/core'
import calculateSlot from 'cluster-key-slot'
import type { RedisCounterStore } from './counter-store.js'
import { type Driver, NoReplyError, NotSentError, type RedisClientLike, toDriver } from './clients.js'
import { SCRIPTS, type Script } from './scripts.js'

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
   * the script, should it still reach the server, refuses to run. Default 2000.
   */
  commandTimeoutMs?: number
}

const DEFAULT_COMMAND_TIMEOUT_MS = 2000
/** How long one clock calibration is trusted before it is refreshed in the background. */
const CALIBRATION_MAX_AGE_MS = 60_000
/** Slack for the millisecond truncation of the server's clock (TIME) and for rounding ours. */
const CLOCK_SLACK_MS = 2
/** Error replies that mean Redis did not run the command and a retry may succeed. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|NOSCRIPT|READONLY)\b/

type Reply = string[]
/** Turns a script's reply into a method's result; `count` is the number of ops (apply only). */
type Parse<T> = (reply: Reply, count: number) => T
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

const optionalInteger = (name: string, value: number | undefined, min: number) =>
  value === undefined ? '' : String(checkInteger(name, value, min))

function parseValue(raw: string): number {
  const value = Number(raw)
  if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(value)) {
    throw new StoreError(`Redis holds a counter value that is not a safe integer: ${JSON.stringify(raw)}`, { retryable: false })
  }
  return value
}

const parseTtl = (raw: string | undefined): number | undefined => (raw === undefined || raw === '' ? undefined : Number(raw))
const parseOptional = (raw: string | undefined): number | undefined => (raw === undefined || raw === '' ? undefined : parseValue(raw))

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

function isReplyError(error: unknown): boolean {
  if (!(error instanceof Error)) return false
  return error.name === 'ReplyError' || ['ReplyError', 'ErrorReply', 'SimpleError', 'BlobError'].includes(error.constructor.name)
}

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('NOSCRIPT')
}

/**
 * A `CounterStore` on Redis: every method is one Lua script, atomic for every process
 * (`capabilities: { shared: true, atomic: 'global' }`), on a single node or a Redis Cluster.
 *
 * - Scripts go out as EVALSHA; on `NOSCRIPT` (a fresh or flushed node, per node on a Cluster)
 *   the same call is sent once as EVAL, which loads it
 *   (https://redis.io/docs/latest/commands/evalsha/). A consume on a present counter is one
 *   round trip.
 * - Keys are the engine's (`{quota:id}:usage...`), behind `prefix`; the counter, lock and
 *   idempotency records of one id share the hash tag, so they sit in one Cluster slot
 *   (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags).
 *   `capabilities.canApplyTogether(keys)` is true when all keys map to one slot (always on a
 *   single node); the engine runs its saga otherwise.
 * - Bounded failure: every call settles within `commandTimeoutMs` (one deadline queue and
 *   one timer per store). Each script carries a deadline in the server's clock (calibrated
 *   with `TIME` against this process's monotonic clock, refreshed every minute) and refuses to
 *   run once it has passed, so a call rejected for a timeout can never be applied later by a
 *   client that queued or resent it.
 *
 * @param options - `client` (required), `prefix`, `commandTimeoutMs`; see `RedisStoreOptions`.
 * @returns a `CounterStore`; its `close()` waits for calls in flight and detaches from the
 *   client, which stays open (it is yours).
 * @throws InvalidArgumentError when `client` is not a recognised Redis client, `prefix`
 *   contains `{` or `}`, or `commandTimeoutMs` is not a positive integer. Methods reject with
 *   `StoreError` when Redis fails (`retryable: true` only when the call surely was not
 *   applied, or cannot double-count if sent again) and with `InvalidArgumentError` for
 *   out-of-contract input (non-integers, values beyond 2^53 - 1, keys in several Cluster slots).
 *
 * @example
 * ```ts
 * import { Redis } from 'ioredis'
 * import { createQuota } from '@andromeda/core'
 * import { createRedisStore } from '@andromeda/redis'
 *
 * const store = createRedisStore({ client: new Redis(process.env.REDIS_URL), prefix: 'shop:' })
 * const vouchers = createQuota({ name: 'voucher', store, limit: 100 })
 * const { allowed } = await vouchers.consume('SUMMER24')
 * ```
 */
export function createRedisStore(options: RedisStoreOptions): RedisCounterStore {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'must be an object')
  const driver = toDriver(options.client)
  if (!driver) {
    throw new InvalidArgumentError('client', 'must be an ioredis Redis/Cluster or a node-redis client/cluster')
  }
  const prefix = options.prefix ?? ''
  if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
    throw new InvalidArgumentError('prefix', 'must be a string without "{" or "}" (they would change the keys\' hash tag)')
  }
  const timeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) {
    throw new InvalidArgumentError('commandTimeoutMs', `must be a positive integer (ms), got ${String(timeoutMs)}`)
  }
  return new RedisStore(driver, prefix, timeoutMs)
}

/** One script call, from the store method's call to its settlement. */
class Call<T = unknown> {
  /** The call that started next: the store's deadline queue, in start order. */
  next: Call | undefined = undefined
  /** Settled; whatever arrives later (a reply, a NOSCRIPT) is dropped. */
  done = false
  /** Handed to the client: it may run from here on, so a timeout can no longer say "not sent". */
  sent = false
  /** Sent again as EVAL after NOSCRIPT. */
  reloaded = false
  /** Past its deadline, its node-redis abort fired: settles as soon as node-redis has answered that. */
  withdrawn = false

  constructor(
    readonly script: Script,
    readonly numKeys: number,
    /** KEYS then ARGV; ARGV[1], the deadline in the server's clock, is filled in when it is sent. */
    readonly command: string[],
    readonly count: number,
    readonly parse: Parse<T>,
    readonly idempotent: boolean,
    readonly signal: AbortSignal | undefined,
    /** `performance.now()` at which the call must have settled. */
    readonly dueAt: number,
    readonly abort: AbortController | undefined,
    readonly resolve: (value: T) => void,
    readonly reject: (error: unknown) => void,
  ) {}
}

class RedisStore implements CounterStore {
  readonly capabilities: CounterStore['capabilities']
  private closed: Promise<void> | undefined
  /** Lower bound of (server clock - `performance.now()`) over every primary, ms. */
  private clock: { offsetMs: number; refreshAfter: number } | undefined
  private calibrating: Promise<void> | undefined
  /**
   * Calls not yet settled, oldest first. Every call of a store has the same timeout, so their
   * deadlines come in start order: one timer, armed for the oldest, bounds them all (instead
   * of a timer and an AbortController per call).
   */
  private head: Call | undefined
  private tail: Call | undefined
  private live = 0
  private timer: NodeJS.Timeout | undefined
  private idle: (() => void)[] = []

  constructor(
    private readonly driver: Driver,
    private readonly prefix: string,
    private readonly timeoutMs: number,
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
  }

  // ------------------------------------------------------------------ contract

  apply(ops: readonly CounterOp[], options: ApplyOptions = NO_OPTIONS): Promise<ApplyResult> {
    // Not `async`: one promise per call, the one `run` returns. Bad input still rejects.
    try {
      return this.startApply(ops, options)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  private startApply(ops: readonly CounterOp[], options: ApplyOptions): Promise<ApplyResult> {
    if (!Array.isArray(ops)) throw new InvalidArgumentError('ops', 'must be an array')
    const n = ops.length
    const command: string[] = []
    const opArgs: string[] = []
    let writes = false
    for (let i = 0; i < n; i++) {
      const op = ops[i]!
      const key = op.key
      if (typeof key !== 'string' || key.length === 0) checkKey(`ops[${i}].key`, key)
      command.push(this.prefix + key)
      if (op.ifMissing !== 'create' && op.ifMissing !== 'report') {
        throw new InvalidArgumentError(`ops[${i}].ifMissing`, `must be 'create' or 'report'`)
      }
      const delta = opInteger(ops, i, 'delta', -Number.MAX_SAFE_INTEGER, false)
      const max = opInteger(ops, i, 'max', 0, true)
      const min = opInteger(ops, i, 'min', -Number.MAX_SAFE_INTEGER, true)
      // Only one bound can refuse an op (max an increment, min a decrement): one argument.
      const sign = op.delta as number
      if (sign !== 0) writes = true
      opArgs.push(
        delta,
        sign > 0 ? max : sign < 0 ? min : '',
        opInteger(ops, i, 'ttlMs', 1, true),
        op.ifMissing === 'create' ? 'c' : 'r',
      )
    }
    if (n === 0) return Promise.resolve({ ok: true, values: [], ttlMs: [] })
    const { idempotencyKey, clearIdempotencyKey, signal } = options
    if (idempotencyKey !== undefined) command.push(this.prefix + checkKey('idempotencyKey', idempotencyKey))
    if (clearIdempotencyKey !== undefined) command.push(this.prefix + checkKey('clearIdempotencyKey', clearIdempotencyKey))
    const numKeys = command.length
    if (this.driver.cluster && !this.oneSlot(command)) {
      throw new InvalidArgumentError('ops', 'keys map to several Redis Cluster slots; check capabilities.canApplyTogether() first')
    }
    command.push(
      '', // ARGV[1]: the deadline, set when the call is sent
      String(n),
      idempotencyKey === undefined ? '' : optionalInteger('idempotencyTtlMs', options.idempotencyTtlMs ?? 86_400_000, 1),
    )
    for (let i = 0; i < opArgs.length; i++) command.push(opArgs[i]!)
    // Sending it again is harmless when it changes nothing, or when a record would replay it.
    const idempotent = idempotencyKey !== undefined || !writes
    return this.run(SCRIPTS.apply, numKeys, command, n, parseApply, idempotent, signal)
  }

  seed(key: string, value: number, ttlMs?: number): Promise<boolean> {
    return this.runOne(SCRIPTS.seed, key, parseFlag, () => [String(checkInteger('value', value, 0)), optionalInteger('ttlMs', ttlMs, 1)])
  }

  get(key: string): Promise<CounterSnapshot | undefined> {
    return this.runOne(SCRIPTS.get, key, parseSnapshot, () => [])
  }

  set(key: string, value: number, ttlMs?: number): Promise<void> {
    return this.runOne(SCRIPTS.set, key, parseNothing, () => [String(checkInteger('value', value, 0)), optionalInteger('ttlMs', ttlMs, 1)])
  }

  delete(key: string): Promise<void> {
    return this.runOne(SCRIPTS.delete, key, parseNothing, () => [])
  }

  acquireLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    return this.runOne(SCRIPTS.acquireLock, key, parseFlag, () => [checkKey('token', token), String(checkInteger('ttlMs', ttlMs, 1))])
  }

  releaseLock(key: string, token: string): Promise<boolean> {
    return this.runOne(SCRIPTS.releaseLock, key, parseFlag, () => [checkKey('token', token)])
  }

  /** Wait for calls in flight (each bounded by `commandTimeoutMs`), then detach from the client. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      while (this.live > 0 || this.calibrating) {
        if (this.live > 0) await new Promise<void>((resolve) => this.idle.push(resolve))
        else await this.calibrating?.catch(() => {})
      }
      clearTimeout(this.timer)
      this.timer = undefined
      this.driver.dispose()
    })()
    return this.closed
  }

  // ------------------------------------------------------------------ one bounded script call

  /** A script on one key (every method but apply); these never double-count if sent again. */
  private runOne<T>(script: Script, key: string, parse: Parse<T>, args: () => string[]): Promise<T> {
    try {
      // Arguments are checked in the order the methods name them: key first.
      const command = [this.prefix + checkKey('key', key), '', ...args()]
      return this.run(script, 1, command, 0, parse, true, undefined)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  private oneSlot(command: string[]): boolean {
    if (command.length <= 1) return true
    const clientPrefix = this.driver.clientKeyPrefix
    const slot = calculateSlot(clientPrefix + command[0]!)
    for (let i = 1; i < command.length; i++) if (calculateSlot(clientPrefix + command[i]!) !== slot) return false
    return true
  }

  private run<T>(
    script: Script,
    numKeys: number,
    command: string[],
    count: number,
    parse: Parse<T>,
    idempotent: boolean,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    if (this.closed) return Promise.reject(new StoreError('the Redis store is closed', { retryable: false }))
    if (signal?.aborted) return Promise.reject(signal.reason)
    return new Promise<T>((resolve, reject) => {
      const dueAt = performance.now() + this.timeoutMs
      const abort = this.driver.withdraws ? new AbortController() : undefined
      const call = new Call<T>(script, numKeys, command, count, parse, idempotent, signal, dueAt, abort, resolve, reject)
      this.enqueue(call as Call)
      // Hot path: connected and calibrated, the command goes out now, with no await before it.
      if (this.clock !== undefined && this.driver.isReady()) this.send(call as Call)
      else void this.prepare(call as Call)
    })
  }

  /** Wait for the client and the clock calibration, then send; each step bounded by the call's deadline. */
  private async prepare(call: Call): Promise<void> {
    try {
      while (!call.done) {
        if (!this.driver.isReady()) await this.driver.ready(call.dueAt - performance.now(), call.signal)
        else if (this.clock === undefined) await this.calibrate()
        else return this.send(call)
      }
    } catch (error) {
      if (!call.done) this.rejectCall(call, this.classify(error, call))
    }
  }

  private send(call: Call): void {
    if (call.done) return
    const clock = this.clock!
    if (call.dueAt > clock.refreshAfter) this.refreshClock()
    // The server refuses the script from this instant on (its clock): never later than the
    // deadline queue rejects the call here, so a call reported as failed is never applied afterwards.
    call.command[call.numKeys] = String(Math.floor(call.dueAt + clock.offsetMs) - CLOCK_SLACK_MS)
    call.sent = true
    let sent: Promise<unknown>
    try {
      sent = this.driver.evalsha(call.script.sha, call.numKeys, call.command, call.abort?.signal)
    } catch (error) {
      this.fail(call, error)
      return
    }
    sent.then(
      (reply) => this.reply(call, reply),
      (error) => this.fail(call, error),
    )
  }

  private reply(call: Call, reply: unknown): void {
    if (call.done) return
    if (!Array.isArray(reply) || typeof reply[0] !== 'string') {
      const error = new StoreError(`unexpected reply to the ${call.script.name} script: ${JSON.stringify(reply)}`, { retryable: false })
      this.rejectCall(call, error)
      return
    }
    if (reply[0] === 'expired') {
      const error = new StoreError(`${call.script.name} reached Redis after its deadline (${this.timeoutMs} ms) and was not applied`, {
        retryable: true,
      })
      this.rejectCall(call, error)
      return
    }
    for (let i = 1; i < reply.length; i++) if (typeof reply[i] !== 'string') reply[i] = String(reply[i])
    let value: unknown
    try {
      value = call.parse(reply as Reply, call.count)
    } catch (error) {
      this.rejectCall(call, this.classify(error, call))
      return
    }
    this.settle(call)
    call.resolve(value)
  }

  private fail(call: Call, error: unknown): void {
    if (call.done) return
    if (!call.reloaded && !call.withdrawn && isNoScript(error)) {
      // NOSCRIPT: the node never ran it, so sending it in full cannot double-apply.
      call.reloaded = true
      let sent: Promise<unknown>
      try {
        sent = this.driver.eval(call.script.lua, call.numKeys, call.command, call.abort?.signal)
      } catch (thrown) {
        this.rejectCall(call, this.classify(thrown, call))
        return
      }
      sent.then(
        (reply) => this.reply(call, reply),
        (thrown) => this.fail(call, thrown),
      )
      return
    }
    this.rejectCall(call, this.classify(error, call))
  }

  private rejectCall(call: Call, error: unknown): void {
    this.settle(call)
    call.reject(error)
  }

  private classify(error: unknown, call: Call): unknown {
    if (AndromedaError.isInstance(error)) return error
    const signal = call.signal
    if (signal?.aborted && error === signal.reason) return error
    const what = `Redis ${call.script.name}`
    if (this.driver.notSent(error)) {
      return new StoreError(`${what} was not sent: ${errorMessage(error)}`, { retryable: true, cause: error })
    }
    if (error instanceof NoReplyError) {
      return new StoreError(
        `${what} got no reply within ${this.timeoutMs} ms${call.idempotent ? '' : '; it may have been applied'}`,
        { retryable: call.idempotent, cause: error },
      )
    }
    if (isReplyError(error)) {
      // Redis answered with an error: the scripts check everything before their first write,
      // so nothing was applied; only transient states are worth a retry.
      return new StoreError(`${what} failed: ${errorMessage(error)}`, {
        retryable: call.idempotent || TRANSIENT_REPLY.test(errorMessage(error)),
        cause: error,
      })
    }
    // A transport error after the command may have been written: applied or not, unknown.
    return new StoreError(`${what} failed: ${errorMessage(error)}`, { retryable: call.idempotent, cause: error })
  }

  // ------------------------------------------------------------------ the deadline queue

  private enqueue(call: Call): void {
    if (this.tail === undefined) this.head = call
    else this.tail.next = call
    this.tail = call
    if (this.live++ === 0) this.timer?.ref()
    // Armed already means armed for an older call, whose deadline comes first.
    if (this.timer === undefined) this.arm(this.timeoutMs)
  }

  private settle(call: Call): void {
    call.done = true
    // Settled calls leave from the front, so the queue holds about the calls in flight.
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

  private arm(delayMs: number): void {
    this.timer = setTimeout(this.onTimer, Math.max(Math.ceil(delayMs), 1))
    if (this.live === 0) this.timer.unref()
  }

  private readonly onTimer = (): void => {
    this.timer = undefined
    const now = performance.now()
    for (let call = this.head; call !== undefined && call.dueAt <= now; call = call.next) {
      if (!call.done && !call.withdrawn) this.expire(call)
    }
    let next = this.head
    while (next !== undefined && (next.done || next.withdrawn)) next = next.next
    if (next !== undefined) this.arm(next.dueAt - now)
  }

  private expire(call: Call): void {
    if (!call.sent) {
      const error = new NotSentError(`no connection to Redis within ${this.timeoutMs} ms`)
      this.rejectCall(call, this.classify(error, call))
      return
    }
    const noReply = () => {
      if (!call.done) this.rejectCall(call, this.classify(new NoReplyError('no reply before the deadline'), call))
    }
    if (call.abort === undefined) {
      noReply()
      return
    }
    // node-redis rejects a command still in its queue on this abort (AbortError, proof it was
    // never written); that answer must win over "no reply", so ours waits one turn.
    call.withdrawn = true
    call.abort.abort()
    setImmediate(noReply)
  }

  // ------------------------------------------------------------------ clock calibration

  /** Measure (server clock - ours) on every primary; one measurement at a time. */
  private calibrate(): Promise<void> {
    this.calibrating ??= (async () => {
      const abort = new AbortController()
      const timer = setTimeout(() => abort.abort(), this.timeoutMs)
      try {
        const offsets = await this.driver.clockOffsets(abort.signal)
        // TIME answered at or before our reading, so each sample is a lower bound of its
        // primary's offset; the smallest bounds them all.
        const offsetMs = Math.min(...offsets)
        this.clock = { offsetMs, refreshAfter: performance.now() + CALIBRATION_MAX_AGE_MS + this.timeoutMs }
      } finally {
        clearTimeout(timer)
        this.calibrating = undefined
      }
    })()
    return this.calibrating
  }

  /** Refresh a calibration past its age in the background; calls keep the current one meanwhile. */
  private refreshClock(): void {
    if (this.calibrating || this.closed) return
    this.calibrate().catch(() => {})
  }
}

// ------------------------------------------------------------------ replies

/** apply: {'ok', v1, ttl1, ...} | {'replay', 'v1,ttl1,...', ms since recorded} | {'refused', index, reason, v1, ttl1, ...}. */
function parseApply(reply: Reply, n: number): ApplyResult {
  const status = reply[0]
  if (status === 'ok') {
    const values: number[] = new Array(n)
    const ttlMs: (number | undefined)[] = new Array(n)
    for (let i = 0; i < n; i++) {
      values[i] = parseValue(reply[1 + 2 * i] ?? '')
      ttlMs[i] = parseTtl(reply[2 + 2 * i])
    }
    return { ok: true, values, ttlMs }
  }
  if (status === 'replay') {
    const parts = (reply[1] ?? '').split(',')
    // The record's lifetimes were measured when it was written; the contract wants them now.
    const elapsedMs = Number(reply[2] ?? 0)
    const values: number[] = new Array(n)
    const ttlMs: (number | undefined)[] = new Array(n)
    for (let i = 0; i < n; i++) {
      values[i] = parseValue(parts[2 * i] ?? '')
      const ttl = parseTtl(parts[2 * i + 1])
      ttlMs[i] = ttl === undefined ? undefined : ttl - elapsedMs
    }
    return { ok: true, values, ttlMs, replayed: true }
  }
  if (status === 'refused') {
    const values: (number | undefined)[] = new Array(n)
    const ttlMs: (number | undefined)[] = new Array(n)
    for (let i = 0; i < n; i++) {
      values[i] = parseOptional(reply[3 + 2 * i])
      ttlMs[i] = parseTtl(reply[4 + 2 * i])
    }
    return { ok: false, index: Number(reply[1]), reason: reply[2] as 'limit' | 'floor' | 'missing', values, ttlMs }
  }
  throw new StoreError(`unexpected reply to the apply script: ${JSON.stringify(reply)}`, { retryable: false })
}

/** seed, acquireLock, releaseLock: {'ok', '1' | '0'}. */
const parseFlag = (reply: Reply): boolean => reply[1] === '1'

const parseNothing = (): void => {}

/** get: {'ok', value ('' = missing), pttl ('' = none)}. */
function parseSnapshot(reply: Reply): CounterSnapshot | undefined {
  if (reply[1] === undefined || reply[1] === '') return undefined
  const value = parseValue(reply[1])
  const ttlMs = parseTtl(reply[2])
  return ttlMs === undefined ? { value } : { value, ttlMs }
}
