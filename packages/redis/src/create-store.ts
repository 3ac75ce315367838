import { checkOptionKeys, checkTimerMs, InvalidArgumentError } from '@andromeda/core'
import { type RedisClientLike, toDriver } from './clients.js'
import type { RedisCounterStore } from './counter-store.js'
import { checkReplicas, type ReplicasOptions } from './replicas.js'
import { RedisStore } from './store.js'

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
    throw new InvalidArgumentError(
      'prefix',
      'must be a string without "{" or "}" (they would change the keys\' hash tag)',
    )
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
    throw new InvalidArgumentError(
      'replicas',
      'this ioredis Cluster does not let WAIT follow a script on its node (keyPrefix differs from redisOptions.keyPrefix)',
    )
  }
  return new RedisStore(driver, prefix, timeoutMs, maxOps, replicas)
}
