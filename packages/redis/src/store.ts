import type { ApplyOptions, ApplyResult, CounterOp, CounterSnapshot, CounterStore } from '@andromeda/core'
import { AndromedaError, InvalidArgumentError, StoreError } from '@andromeda/core'
import calculateSlot from 'cluster-key-slot'
import { type Driver, NoReplyError, type RedisClientLike, toDriver } from './clients.js'
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
/** Slack for the millisecond truncation of both clocks (TIME and Date.now). */
const CLOCK_SLACK_MS = 2
/** Error replies that mean Redis did not run the command and a retry may succeed. */
const TRANSIENT_REPLY = /^(LOADING|BUSY|TRYAGAIN|CLUSTERDOWN|MASTERDOWN|NOSCRIPT|READONLY)\b/

type Reply = string[]

function checkInteger(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(name, `must be an integer in [${min}, 2^53 - 1], got ${String(value)}`)
  }
  return value
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
 * - Bounded failure: every call settles within `commandTimeoutMs`. Each script carries a
 *   deadline in the server's clock (calibrated with `TIME` against this process's clock,
 *   refreshed every minute) and refuses to run once it has passed, so a call rejected for a
 *   timeout can never be applied later by a client that queued or resent it.
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
export function createRedisStore(options: RedisStoreOptions): CounterStore {
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

class RedisStore implements CounterStore {
  readonly capabilities: CounterStore['capabilities']
  private closed: Promise<void> | undefined
  private readonly inFlight = new Set<Promise<unknown>>()
  /** Lower bound of (server clock - our clock) over every primary, ms. */
  private clock: { offsetMs: number; measuredAt: number } | undefined
  private calibrating: Promise<number> | undefined

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

  async apply(ops: readonly CounterOp[], options: ApplyOptions = {}): Promise<ApplyResult> {
    if (!Array.isArray(ops)) throw new InvalidArgumentError('ops', 'must be an array')
    const args: string[] = []
    const keys: string[] = []
    ops.forEach((op, i) => {
      keys.push(checkKey(`ops[${i}].key`, op.key))
      if (op.ifMissing !== 'create' && op.ifMissing !== 'report') {
        throw new InvalidArgumentError(`ops[${i}].ifMissing`, `must be 'create' or 'report'`)
      }
      args.push(
        String(checkInteger(`ops[${i}].delta`, op.delta, -Number.MAX_SAFE_INTEGER)),
        optionalInteger(`ops[${i}].max`, op.max, 0),
        optionalInteger(`ops[${i}].min`, op.min, -Number.MAX_SAFE_INTEGER),
        optionalInteger(`ops[${i}].ttlMs`, op.ttlMs, 1),
        op.ifMissing === 'create' ? 'c' : 'r',
      )
    })
    if (ops.length === 0) return { ok: true, values: [], ttlMs: [] }
    const { idempotencyKey, clearIdempotencyKey, signal } = options
    if (idempotencyKey !== undefined) keys.push(checkKey('idempotencyKey', idempotencyKey))
    if (clearIdempotencyKey !== undefined) keys.push(checkKey('clearIdempotencyKey', clearIdempotencyKey))
    if (!this.capabilities.canApplyTogether(keys)) {
      throw new InvalidArgumentError('ops', 'keys map to several Redis Cluster slots; check capabilities.canApplyTogether() first')
    }
    const idempotencyTtlMs = idempotencyKey === undefined ? '' : optionalInteger('idempotencyTtlMs', options.idempotencyTtlMs ?? 86_400_000, 1)
    const header = [String(ops.length), idempotencyKey === undefined ? '0' : '1', idempotencyTtlMs, clearIdempotencyKey === undefined ? '0' : '1']
    // Sending it again is harmless when it changes nothing, or when a record would replay it.
    const idempotent = idempotencyKey !== undefined || ops.every((op) => op.delta === 0)
    const reply = await this.run(SCRIPTS.apply, keys, [...header, ...args], idempotent, signal)

    if (reply[0] === 'replay') {
      const parts = (reply[1] ?? '').split(',')
      return {
        ok: true,
        values: ops.map((_, i) => parseValue(parts[2 * i] ?? '')),
        ttlMs: ops.map((_, i) => parseTtl(parts[2 * i + 1])),
        replayed: true,
      }
    }
    if (reply[0] === 'refused') {
      const reason = reply[2] as 'limit' | 'floor' | 'missing'
      return {
        ok: false,
        index: Number(reply[1]),
        reason,
        values: ops.map((_, i) => parseOptional(reply[3 + 2 * i])),
        ttlMs: ops.map((_, i) => parseTtl(reply[4 + 2 * i])),
      }
    }
    return {
      ok: true,
      values: ops.map((_, i) => parseValue(reply[1 + 2 * i] ?? '')),
      ttlMs: ops.map((_, i) => parseTtl(reply[2 + 2 * i])),
    }
  }

  async seed(key: string, value: number, ttlMs?: number): Promise<boolean> {
    const args = [String(checkInteger('value', value, 0)), optionalInteger('ttlMs', ttlMs, 1)]
    const reply = await this.run(SCRIPTS.seed, [checkKey('key', key)], args, true)
    return reply[1] === '1'
  }

  async get(key: string): Promise<CounterSnapshot | undefined> {
    const reply = await this.run(SCRIPTS.get, [checkKey('key', key)], [], true)
    if (reply[1] === undefined || reply[1] === '') return undefined
    const value = parseValue(reply[1])
    const ttlMs = parseTtl(reply[2])
    return ttlMs === undefined ? { value } : { value, ttlMs }
  }

  async set(key: string, value: number, ttlMs?: number): Promise<void> {
    const args = [String(checkInteger('value', value, 0)), optionalInteger('ttlMs', ttlMs, 1)]
    await this.run(SCRIPTS.set, [checkKey('key', key)], args, true)
  }

  async delete(key: string): Promise<void> {
    await this.run(SCRIPTS.delete, [checkKey('key', key)], [], true)
  }

  async acquireLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    const args = [checkKey('token', token), String(checkInteger('ttlMs', ttlMs, 1))]
    const reply = await this.run(SCRIPTS.acquireLock, [checkKey('key', key)], args, true)
    return reply[1] === '1'
  }

  async releaseLock(key: string, token: string): Promise<boolean> {
    const reply = await this.run(SCRIPTS.releaseLock, [checkKey('key', key)], [checkKey('token', token)], true)
    return reply[1] === '1'
  }

  /** Wait for calls in flight (each bounded by `commandTimeoutMs`), then detach from the client. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight])
      this.driver.dispose()
    })()
    return this.closed
  }

  // ------------------------------------------------------------------ one bounded script call

  private track<T>(promise: Promise<T>): Promise<T> {
    this.inFlight.add(promise)
    const done = () => this.inFlight.delete(promise)
    promise.then(done, done)
    return promise
  }

  private run(script: Script, keys: string[], args: string[], idempotent: boolean, signal?: AbortSignal): Promise<Reply> {
    if (this.closed) return Promise.reject(new StoreError('the Redis store is closed', { retryable: true }))
    signal?.throwIfAborted()
    return this.track(this.runBounded(script, keys, args, idempotent, signal))
  }

  private async runBounded(script: Script, keys: string[], args: string[], idempotent: boolean, signal?: AbortSignal): Promise<Reply> {
    const deadlineAt = Date.now() + this.timeoutMs
    const deadline = new AbortController()
    const timer = setTimeout(() => deadline.abort(), this.timeoutMs)
    try {
      await this.driver.ready(deadlineAt, signal)
      const offsetMs = await this.clockOffset(deadline.signal)
      // The server refuses the script from this instant on (its clock): never later than our
      // own timeout fires, so a call we reported as failed can never be applied afterwards.
      const serverDeadline = String(deadlineAt + offsetMs - CLOCK_SLACK_MS)
      const fullKeys = keys.map((key) => this.prefix + key)
      const argv = [serverDeadline, ...args]
      let reply: unknown
      try {
        reply = await this.driver.evalsha(script.sha, fullKeys, argv, deadline.signal)
      } catch (error) {
        if (!isNoScript(error)) throw error
        // NOSCRIPT: the node never ran it, so sending it in full cannot double-apply.
        reply = await this.driver.eval(script.lua, fullKeys, argv, deadline.signal)
      }
      if (!Array.isArray(reply) || typeof reply[0] !== 'string') {
        throw new StoreError(`unexpected reply to the ${script.name} script: ${JSON.stringify(reply)}`, { retryable: false })
      }
      if (reply[0] === 'expired') {
        throw new StoreError(`${script.name} reached Redis after its deadline (${this.timeoutMs} ms) and was not applied`, {
          retryable: true,
        })
      }
      return reply.map((part) => (typeof part === 'string' ? part : String(part)))
    } catch (error) {
      throw this.classify(error, script, idempotent, signal)
    } finally {
      clearTimeout(timer)
    }
  }

  private classify(error: unknown, script: Script, idempotent: boolean, signal?: AbortSignal): unknown {
    if (AndromedaError.isInstance(error)) return error
    if (signal?.aborted && error === signal.reason) return error
    const what = `Redis ${script.name}`
    if (this.driver.notSent(error)) {
      return new StoreError(`${what} was not sent: ${errorMessage(error)}`, { retryable: true, cause: error })
    }
    if (error instanceof NoReplyError) {
      return new StoreError(
        `${what} got no reply within ${this.timeoutMs} ms${idempotent ? '' : '; it may have been applied'}`,
        { retryable: idempotent, cause: error },
      )
    }
    if (isReplyError(error)) {
      // Redis answered with an error: the scripts check everything before their first write,
      // so nothing was applied; only transient states are worth a retry.
      return new StoreError(`${what} failed: ${errorMessage(error)}`, {
        retryable: idempotent || TRANSIENT_REPLY.test(errorMessage(error)),
        cause: error,
      })
    }
    // A transport error after the command may have been written: applied or not, unknown.
    return new StoreError(`${what} failed: ${errorMessage(error)}`, { retryable: idempotent, cause: error })
  }

  // ------------------------------------------------------------------ clock calibration

  /** Lower bound of (server clock - ours); measured once, refreshed in the background. */
  private async clockOffset(abort: AbortSignal): Promise<number> {
    const clock = this.clock
    if (clock) {
      if (Date.now() - clock.measuredAt > CALIBRATION_MAX_AGE_MS && !this.calibrating) {
        const refresh = new AbortController()
        const timer = setTimeout(() => refresh.abort(), this.timeoutMs)
        this.track(this.calibrate(refresh.signal).finally(() => clearTimeout(timer))).catch(() => {})
      }
      return clock.offsetMs
    }
    return this.calibrate(abort)
  }

  private calibrate(abort: AbortSignal): Promise<number> {
    this.calibrating ??= this.driver
      .clockOffsets(abort)
      .then((offsets) => {
        // TIME answered at or before our reading, so each sample is a lower bound of its
        // primary's offset; the smallest bounds them all.
        const offsetMs = Math.min(...offsets)
        this.clock = { offsetMs, measuredAt: Date.now() }
        return offsetMs
      })
      .finally(() => {
        this.calibrating = undefined
      })
    return this.calibrating
  }
}
