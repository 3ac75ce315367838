import type { CounterStore } from '@andromeda/core'
import { createMemoryStore } from '@andromeda/memory'
import { createRedisStore } from '@andromeda/redis'
import { Cluster, Redis } from 'ioredis'
import { retryWithin } from './tools.js'

/** The counter store and what it takes to shut it down. */
export interface StoreHandle {
  readonly kind: 'memory' | 'redis'
  readonly store: CounterStore
  /** Redis only: delete every key under this handle's prefix (the demo's own keys). */
  deleteOwnKeys(): Promise<void>
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
    return { kind: 'memory', store, deleteOwnKeys: async () => {}, close: async () => store.close?.() }
  }
  const client = new Redis(options.url, { lazyConnect: true, maxRetriesPerRequest: 2 })
  client.on('error', () => {}) // reconnects are ioredis's business; calls fail with StoreError meanwhile
  return openRedisHandle(client, `Redis at ${redact(options.url)}`, options)
}

/** The Redis store on a Cluster (ioredis `Cluster`). */
function openClusterStore(nodes: { host: string; port: number }[], options: StoreOptions): Promise<StoreHandle> {
  const client = new Cluster(nodes, { lazyConnect: true })
  client.on('error', () => {}) // failovers are the cluster's business; calls fail with StoreError meanwhile
  const where = `the Redis Cluster at ${nodes.map((n) => `${n.host}:${n.port}`).join(', ')}`
  return openRedisHandle(client, where, options)
}

/** Connect (failing fast at start-up when Redis is not there, instead of queueing commands forever), then the store on it. */
async function openRedisHandle(client: Redis | Cluster, where: string, options: StoreOptions): Promise<StoreHandle> {
  const prefix = options.prefix ?? 'andromeda-demo:'
  try {
    await client.connect()
  } catch (error) {
    client.disconnect()
    throw new Error(`cannot connect to ${where}: ${(error as Error).message}`)
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
    // A Cluster's client may still list a node whose connection a failover just closed: the
    // scan is asked again (deleting is idempotent) until it answers, bounded.
    deleteOwnKeys: () => retryWithin('could not delete the keys', 15_000, () => deleteKeys(client, prefix)),
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

/**
 * Delete every key under `prefix`: SCAN, never KEYS, so only our prefix and without blocking a
 * server. On a Cluster, every node (after a failover the client's idea of who is primary may
 * lag; a replica lists its primary's keys); each key is deleted through the client, which routes
 * it to its slot.
 */
async function deleteKeys(client: Redis | Cluster, prefix: string): Promise<void> {
  const nodes = client instanceof Cluster ? client.nodes('all') : [client]
  for (const node of nodes) {
    for await (const keys of node.scanStream({ match: `${prefix}*`, count: 1000 })) {
      await Promise.all((keys as string[]).map((key) => client.unlink(key)))
    }
  }
}
