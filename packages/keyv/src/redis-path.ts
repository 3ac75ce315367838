import type { CounterStore } from '@andromeda/core'
import { StoreError } from '@andromeda/core'
import { createRedisStore, type RedisClientLike } from '@andromeda/redis'
import type { KeyvCounterStore } from './counter-store.js'

/** The parts of an @keyv/redis `KeyvRedis` adapter this package uses. */
export interface KeyvRedisLike {
  readonly client: unknown
  readonly namespace?: string | undefined
  readonly keyPrefixSeparator?: string
  getClient(): Promise<unknown>
}

/**
 * True for an @keyv/redis adapter (and look-alikes): it hands out its node-redis client with
 * `getClient()` and prefixes keys with `namespace` + `keyPrefixSeparator`.
 */
export function isKeyvRedis(store: unknown): store is KeyvRedisLike {
  if (typeof store !== 'object' || store === null) return false
  const s = store as Partial<KeyvRedisLike>
  return (
    typeof s.getClient === 'function' &&
    typeof s.keyPrefixSeparator === 'string' &&
    typeof s.client === 'object' &&
    s.client !== null
  )
}

/** The parts of an @keyv/valkey `KeyvValkey` adapter this package uses: its iovalkey client. */
export interface KeyvValkeyLike {
  readonly redis: unknown
  readonly namespace?: string | undefined
}

/**
 * True for an @keyv/valkey adapter: its `redis` is an iovalkey client, which speaks the ioredis
 * API that `@andromeda/redis` drives.
 */
export function isKeyvValkey(store: unknown): store is KeyvValkeyLike {
  if (typeof store !== 'object' || store === null) return false
  const client = (store as { redis?: unknown }).redis as
    | { status?: unknown; evalsha?: unknown; eval?: unknown }
    | undefined
  return (
    store.constructor?.name === 'KeyvValkey' &&
    typeof client === 'object' &&
    client !== null &&
    typeof client.status === 'string' &&
    typeof client.evalsha === 'function' &&
    typeof client.eval === 'function'
  )
}

/**
 * The globally atomic path on @keyv/valkey: counters go through its iovalkey client (which
 * connects by itself; `@andromeda/redis` waits for it within `commandTimeoutMs`) as raw integer
 * keys under `<namespace>:`, the prefix Keyv gives its own keys there.
 */
export function createKeyvValkeyPath(
  adapter: KeyvValkeyLike,
  namespace: string | undefined,
  commandTimeoutMs: number,
): KeyvCounterStore {
  const prefix = namespace ? `${namespace}:` : ''
  return createRedisStore({ client: adapter.redis as RedisClientLike, prefix, commandTimeoutMs })
}

/** The key prefix @keyv/redis itself puts in front of its keys: `<namespace><separator>`. */
export function keyvRedisPrefix(store: KeyvRedisLike): string {
  return store.namespace ? `${store.namespace}${store.keyPrefixSeparator ?? '::'}` : ''
}

/** The adapter's client, opened by `getClient()` within `ms`; else a retryable `StoreError` (nothing was sent). */
async function openClient(adapter: KeyvRedisLike, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      adapter.getClient(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not connected within ${ms} ms`)), ms)
      }),
    ])
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new StoreError(`keyv redis client could not connect: ${reason}`, { retryable: true, cause: error })
  } finally {
    clearTimeout(timer)
  }
}

/**
 * The globally atomic path: counters go through the adapter's own node-redis client with the
 * Lua scripts of `@andromeda/redis`, as raw integer keys under the Keyv namespace.
 *
 * The adapter connects lazily, so each call first makes sure the client is open (through
 * `getClient()`, bounded by `commandTimeoutMs`), then delegates.
 */
export function createKeyvRedisPath(adapter: KeyvRedisLike, commandTimeoutMs: number): KeyvCounterStore {
  const prefix = keyvRedisPrefix(adapter)
  let current = {
    client: adapter.client,
    store: createRedisStore({ client: adapter.client as RedisClientLike, prefix, commandTimeoutMs }),
  }
  let closed = false

  async function connected(): Promise<CounterStore> {
    if (closed) throw new StoreError('keyv store is closed', { retryable: false })
    const client = adapter.client as { isOpen?: boolean }
    if (client === current.client && client.isOpen === true) return current.store
    const opened = await openClient(adapter, commandTimeoutMs)
    if (opened !== current.client) {
      // The adapter's client was replaced: follow it.
      void current.store.close?.()
      current = {
        client: opened,
        store: createRedisStore({ client: opened as RedisClientLike, prefix, commandTimeoutMs }),
      }
    }
    return current.store
  }

  return {
    capabilities: {
      shared: true,
      atomic: 'global',
      canApplyTogether: (keys) => current.store.capabilities.canApplyTogether(keys),
    },
    apply: async (ops, options) => (await connected()).apply(ops, options),
    seed: async (key, value, ttlMs, lockToken) => (await connected()).seed(key, value, ttlMs, lockToken),
    get: async (key) => (await connected()).get(key),
    set: async (key, value, ttlMs) => (await connected()).set(key, value, ttlMs),
    delete: async (key) => (await connected()).delete(key),
    acquireLock: async (key, token, ttlMs) => (await connected()).acquireLock(key, token, ttlMs),
    releaseLock: async (key, token) => (await connected()).releaseLock(key, token),
    async close() {
      if (closed) return
      closed = true
      await current.store.close?.()
    },
  }
}
