import { createMemoryStore } from '@andromeda/memory'
import { LRUCache } from 'lru-cache'

const gc = () => {
  const collect = (globalThis as { gc?: () => void }).gc
  if (!collect) throw new Error('run with --expose-gc')
  collect()
  collect()
}

/** Bytes of heap per live entry after filling `count` entries, measured after a full GC. */
async function bytesPerEntry(count: number, fill: (count: number) => Promise<unknown>): Promise<number> {
  gc()
  const before = process.memoryUsage().heapUsed
  const held = await fill(count)
  gc()
  const after = process.memoryUsage().heapUsed
  if (!held) throw new Error('nothing held')
  return (after - before) / count
}

export interface FootprintResult {
  entries: number
  memoryStore: number
  memoryStoreWithTtl: number
  bareLruCache: number
}

/** Memory store counters vs a bare lru-cache holding plain numbers under the same keys. */
export async function benchFootprint(entries: number): Promise<FootprintResult> {
  const key = (i: number) => `{voucher:v${i}}:usage`
  const bareLruCache = await bytesPerEntry(entries, async (n) => {
    const cache = new LRUCache<string, number>({ max: n })
    for (let i = 0; i < n; i++) cache.set(key(i), 1 + (i % 100))
    return cache
  })
  const memoryStore = await bytesPerEntry(entries, async (n) => {
    const store = createMemoryStore({ max: n })
    for (let i = 0; i < n; i++)
      await store.apply([{ key: key(i), delta: 1 + (i % 100), max: 1000, ifMissing: 'create' }])
    return store
  })
  const memoryStoreWithTtl = await bytesPerEntry(entries, async (n) => {
    const store = createMemoryStore({ max: n })
    for (let i = 0; i < n; i++) {
      await store.apply([{ key: key(i), delta: 1 + (i % 100), max: 1000, ttlMs: 3_600_000, ifMissing: 'create' }])
    }
    return store
  })
  return { entries, memoryStore, memoryStoreWithTtl, bareLruCache }
}

/** Bytes Redis reports (MEMORY USAGE) for one andromeda counter with a TTL. */
export async function redisBytesPerCounter(): Promise<number> {
  const { Redis } = await import('ioredis')
  const { createQuota, counterKey } = await import('@andromeda/core')
  const { createRedisStore } = await import('@andromeda/redis')
  const client = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  client.on('error', (error: Error) => console.error('redis:', error.message))
  try {
    const name = `bench-footprint-${process.pid}`
    const quota = createQuota({ name, store: createRedisStore({ client }), limit: 1000, ttlMs: 3_600_000 })
    await quota.consume('v1', 42)
    const bytes = Number(await client.call('MEMORY', 'USAGE', counterKey(name, 'v1', 'ttl'), 'SAMPLES', '0'))
    await client.del(counterKey(name, 'v1', 'ttl'))
    return bytes
  } finally {
    client.disconnect()
  }
}
