import type { CounterStore } from '@andromeda/core'
import { createMemoryStore } from '@andromeda/memory'
import { createRedisStore } from '@andromeda/redis'
import { Cluster, Redis } from 'ioredis'

/** The counter store and what it takes to shut it down. */
export interface StoreHandle {
  readonly kind: 'memory' | 'redis'
  readonly store: CounterStore
  /** Redis only: delete every key under this handle's prefix (the demo's own keys). */
  deleteOwnKeys(): Promise<number>
  /** Wait for calls in flight, then disconnect. */
  close(): Promise<void>
}

export interface StoreOptions {
  /** `redis://...` for Redis; omitted: the in-process memory store. */
  url?: string
  /** Redis only: prefix of every key, e.g. `flash-sale:`. Default `andromeda-demo:`. */
  prefix?: string
  /** A Redis Cluster instead of `url`: the nodes to start from. */
  cluster?: { host: string; port: number }[]
  /** Redis only: report a grant once this many replicas have it (the store's `replicas` option). */
  replicas?: { count: number; timeoutMs: number }
  /** Redis only: `false` sends every call on its own (the store's `batch` option). Default on. */
  batch?: boolean
}

/** The memory store (one process) by default, or Redis (shared, globally atomic) by URL. */
export async function openStore(options: StoreOptions = {}): Promise<StoreHandle> {
  if (options.cluster) return openClusterStore(options.cluster, options)
  if (!options.url) {
    // Roomy: every (user, voucher) pair has a per-user counter, and evicting a live counter
    // would forget usage.
    const store = createMemoryStore({ max: 1_000_000 })
    return { kind: 'memory', store, deleteOwnKeys: async () => 0, close: async () => store.close?.() }
  }
  const prefix = options.prefix ?? 'andromeda-demo:'
  // Fail fast at start-up when Redis is not there, instead of queueing commands forever.
  const client = new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: 2 })
  client.on('error', () => {}) // reconnects are ioredis's business; calls fail with StoreError meanwhile
  try {
    await client.connect()
  } catch (error) {
    client.disconnect()
    throw new Error(`cannot connect to Redis at ${redact(options.url)}: ${(error as Error).message}`)
  }
  const store = createRedisStore({
    client,
    prefix,
    ...(options.replicas ? { replicas: options.replicas } : {}),
    ...(options.batch === false ? { batch: false } : {}),
  })
  return {
    kind: 'redis',
    store,
    async deleteOwnKeys() {
      let deleted = 0
      // SCAN, never KEYS: only our prefix, without blocking the server.
      for await (const keys of client.scanStream({ match: `${prefix}*`, count: 1000 })) {
        if ((keys as string[]).length > 0) deleted += await client.unlink(...(keys as string[]))
      }
      return deleted
    },
    async close() {
      await store.close?.()
      await client.quit().catch(() => client.disconnect())
    },
  }
}

/** The Redis store on a Cluster (ioredis `Cluster`). */
async function openClusterStore(nodes: { host: string; port: number }[], options: StoreOptions): Promise<StoreHandle> {
  const prefix = options.prefix ?? 'andromeda-demo:'
  const client = new Cluster(nodes, { lazyConnect: true })
  client.on('error', () => {}) // failovers are the cluster's business; calls fail with StoreError meanwhile
  try {
    await client.connect()
  } catch (error) {
    client.disconnect()
    throw new Error(
      `cannot connect to the Redis Cluster at ${nodes.map((n) => `${n.host}:${n.port}`).join(', ')}: ${(error as Error).message}`,
    )
  }
  const store = createRedisStore({
    client,
    prefix,
    ...(options.replicas ? { replicas: options.replicas } : {}),
    ...(options.batch === false ? { batch: false } : {}),
  })
  return {
    kind: 'redis',
    store,
    async deleteOwnKeys() {
      let deleted = 0
      // SCAN every node (after a failover the client's idea of who is primary may lag; a
      // replica lists its primary's keys), delete through the cluster, which routes each key
      // to its slot's primary.
      for (const node of client.nodes('all')) {
        for await (const keys of node.scanStream({ match: `${prefix}*`, count: 1000 })) {
          for (const key of keys as string[]) deleted += await client.unlink(key)
        }
      }
      return deleted
    },
    async close() {
      await store.close()
      await client.quit().catch(() => client.disconnect())
    },
  }
}

/** A URL without its password, for messages. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return '(invalid URL)'
  }
}
