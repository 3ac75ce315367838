import { Cluster, Redis } from 'ioredis'
import { createClient, createCluster } from 'redis'
import { createClient as createClient6, createCluster as createCluster6 } from 'redis6'
import { describe, expect, it } from 'vitest'
import { createRedisStore } from '../src/index.js'

// Type-level too: each library's own client type is accepted without a cast.
describe('createRedisStore() accepts the clients users already have', () => {
  it('ioredis Redis and Cluster, node-redis 5 and 6 clients and clusters (RESP2 and RESP3); close() needs no check', async () => {
    const ioredis = new Redis({ lazyConnect: true })
    const ioCluster = new Cluster([{ host: '127.0.0.1', port: 1 }], { lazyConnect: true })
    const nodeRedis = createClient()
    const nodeRedis3 = createClient({ RESP: 3 })
    const nodeCluster = createCluster({ rootNodes: [{ socket: { host: '127.0.0.1', port: 1 } }] })
    const nodeRedis6 = createClient6()
    const nodeRedis6resp3 = createClient6({ RESP: 3 })
    const nodeCluster6 = createCluster6({ rootNodes: [{ socket: { host: '127.0.0.1', port: 1 } }] })
    for (const client of [
      ioredis,
      ioCluster,
      nodeRedis,
      nodeRedis3,
      nodeCluster,
      nodeRedis6,
      nodeRedis6resp3,
      nodeCluster6,
    ]) {
      const store = createRedisStore({ client })
      expect(store.capabilities).toMatchObject({ shared: true, atomic: 'global' })
      // The concrete return type: close() is always there (no `?.` needed under strict).
      await store.close()
    }
    ioredis.disconnect()
    ioCluster.disconnect()
  })

  it('an unopened node-redis client fails fast with a retryable StoreError', async () => {
    const store = createRedisStore({ client: createClient(), commandTimeoutMs: 200 })
    await expect(store.get('k')).rejects.toMatchObject({ code: 'ERR_STORE', retryable: true })
  })

  it('rejects what it cannot use', () => {
    expect(() => createRedisStore({ client: {} as never })).toThrow(/client/)
    expect(() => createRedisStore({ client: new Redis({ lazyConnect: true }), prefix: '{x}' })).toThrow(/prefix/)
    expect(() => createRedisStore({ client: new Redis({ lazyConnect: true }), commandTimeoutMs: 0 })).toThrow(
      /commandTimeoutMs/,
    )
  })

  it('refuses a commandTimeoutMs of 2^31 ms (a timer would fire at once), naming the largest value; 2^31 - 1 is accepted', async () => {
    const client = new Redis({ lazyConnect: true })
    expect(() => createRedisStore({ client, commandTimeoutMs: 2 ** 31 })).toThrow(/commandTimeoutMs.*2147483647/)
    // replicas.timeoutMs must stay below commandTimeoutMs, so it is bounded too.
    expect(() => createRedisStore({ client, replicas: { count: 1, timeoutMs: 2 ** 31 } })).toThrow(
      /replicas\.timeoutMs/,
    )
    const store = createRedisStore({ client, commandTimeoutMs: 2 ** 31 - 1 })
    await store.close()
    client.disconnect()
  })

  it('refuses unknown option keys, naming the key and the nearest option', () => {
    const client = new Redis({ lazyConnect: true })
    expect(() => createRedisStore({ client, commandTimeout: 100 } as never)).toThrow(
      /commandTimeout: .*did you mean 'commandTimeoutMs'/,
    )
    expect(() => createRedisStore({ client, batch: { maxOp: 4 } } as never)).toThrow(/batch\.maxOp/)
    expect(() => createRedisStore({ client, replicas: { count: 1, timeout: 10 } } as never)).toThrow(
      /replicas\.timeout/,
    )
    client.disconnect()
  })
})
