import { connect } from 'node:net'
import { createQuota, StoreError } from '@andromeda/core'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisStore, type RedisCounterStore } from '../src/index.js'
import { type SingleKind, singleClient, type TestClient } from './clients.js'
import { hasRedisServerBinary, type OwnRedis, randomPrefix, requireService, startRedis } from './helpers.js'

// Everything here runs on redis-server processes this file starts (SCRIPT FLUSH, MONITOR,
// stopping and pausing a server must not disturb other suites on the shared server).
const available = requireService(await hasRedisServerBinary(), 'redis-server and redis-cli on PATH')
const kinds: SingleKind[] = ['ioredis', 'node-redis', 'node-redis-6']
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Record what one client sends, as MONITOR shows it on a raw socket (each line names its
 * source: the client's address, or `lua` for commands a script ran, which are skipped).
 */
async function monitorClient(port: number, address: string) {
  const socket = connect(port, '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write('MONITOR\r\n')
  const seen: string[] = []
  let marker = ''
  let markerSeen: () => void = () => {}
  let buffered = ''
  socket.on('data', (chunk) => {
    buffered += chunk.toString('utf8')
    const lines = buffered.split('\r\n')
    buffered = lines.pop() ?? ''
    for (const line of lines) {
      const match = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]*)"(?: "([^"]*)")?/.exec(line)
      if (!match) continue
      const [, source, command, first] = match
      if (command?.toUpperCase() === 'ECHO' && first === marker) markerSeen()
      if (source === address) seen.push(command!.toUpperCase())
    }
  })
  const admin = new Redis(port)
  return {
    seen,
    /** Wait until MONITOR has shown everything sent before this call. */
    async flush() {
      marker = `flush-${Math.random()}`
      const shown = new Promise<void>((resolve) => {
        markerSeen = resolve
      })
      await admin.echo(marker)
      await shown
    },
    async stop() {
      socket.destroy()
      admin.disconnect()
    },
  }
}

describe.runIf(available).each(kinds)('Redis store on %s', (kind) => {
  let server: OwnRedis
  let admin: Redis
  let client: TestClient

  beforeAll(async () => {
    server = await startRedis()
    admin = new Redis(server.port)
    client = await singleClient(kind, server.port)
  })
  afterAll(async () => {
    await client?.quit()
    admin?.disconnect()
    await server?.destroy()
  })

  it('a consume on a present counter sends exactly one command (EVALSHA)', async () => {
    const store = createRedisStore({ client: client.client, prefix: randomPrefix() })
    const quota = createQuota({ name: 'monitor', store, limit: 100 })
    await quota.consume('v1') // creates the counter, loads the script, calibrates the clock
    const monitor = await monitorClient(server.port, await client.address())
    try {
      await monitor.flush()
      monitor.seen.length = 0
      const result = await quota.consume('v1')
      await monitor.flush()
      expect(result).toMatchObject({ allowed: true, usage: 2 })
      expect(monitor.seen).toEqual(['EVALSHA'])
    } finally {
      await monitor.stop()
      await store.close?.()
    }
  })

  it('after SCRIPT FLUSH the next consume succeeds and is counted once', async () => {
    const store = createRedisStore({ client: client.client, prefix: randomPrefix() })
    const quota = createQuota({ name: 'flush', store, limit: 100 })
    await quota.consume('v1')
    const monitor = await monitorClient(server.port, await client.address())
    try {
      await admin.script('FLUSH')
      await monitor.flush()
      monitor.seen.length = 0
      const result = await quota.consume('v1')
      await monitor.flush()
      expect(result).toMatchObject({ allowed: true, usage: 2 })
      // NOSCRIPT on EVALSHA, then one EVAL that loads and runs it; then EVALSHA again.
      expect(monitor.seen).toEqual(['EVALSHA', 'EVAL'])
      monitor.seen.length = 0
      await quota.consume('v1')
      await monitor.flush()
      expect(monitor.seen).toEqual(['EVALSHA'])
      expect((await quota.get('v1')).usage).toBe(3)
    } finally {
      await monitor.stop()
      await store.close?.()
    }
  })

  it('with ttlMs every counter has a PTTL > 0 after every operation and later calls never raise it', async () => {
    const prefix = randomPrefix()
    const store = createRedisStore({ client: client.client, prefix })
    const quota = createQuota({ name: 'ttl', store, limit: 10, ttlMs: 60_000 })
    const key = `${prefix}{ttl:v1}:usage:ttl`
    let last = Number.POSITIVE_INFINITY
    const steps: (() => Promise<unknown>)[] = [
      () => quota.consume('v1'),
      () => quota.consume('v1', 3),
      () => quota.refund('v1'),
      () => quota.consume('v1', 100), // refused
      () => quota.refund('v1', 100), // refused
      () => quota.get('v1'),
      () => quota.set('v1', 2),
      () => quota.consume('v1'),
    ]
    for (const step of steps) {
      await step()
      await sleep(5)
      const pttl = await admin.pttl(key)
      expect(pttl).toBeGreaterThan(0)
      expect(pttl).toBeLessThanOrEqual(last)
      last = pttl
    }
    await store.close?.()
  })

  it('a refund after the counter expired creates nothing; the next window grants exactly the limit', async () => {
    const prefix = randomPrefix()
    const store = createRedisStore({ client: client.client, prefix })
    const quota = createQuota({ name: 'expiry', store, limit: 5, ttlMs: 150 })
    const granted = await Promise.all(Array.from({ length: 8 }, () => quota.consume('v1')))
    expect(granted.filter((r) => r.allowed)).toHaveLength(5)
    await sleep(300)
    const refund = await quota.refund('v1')
    expect(refund).toMatchObject({ allowed: false, reason: 'floor', usage: 0 })
    expect(await admin.exists(`${prefix}{expiry:v1}:usage`)).toBe(0)
    const next = await Promise.all(Array.from({ length: 8 }, () => quota.consume('v1')))
    expect(next.filter((r) => r.allowed)).toHaveLength(5)
    await store.close?.()
  })
})

describe.runIf(available).each(kinds)('bounded failure on %s', (kind) => {
  let server: OwnRedis
  let client: TestClient
  let store: RedisCounterStore
  const timeoutMs = 500
  // Generous slack for a loaded machine; the bound itself is the behaviour under test.
  const boundMs = timeoutMs + 300

  beforeAll(async () => {
    server = await startRedis()
    client = await singleClient(
      kind,
      server.port,
      kind === 'ioredis'
        ? { retryStrategy: () => 100 }
        : { socket: { host: '127.0.0.1', port: server.port, reconnectStrategy: () => 100 } },
    )
    store = createRedisStore({ client: client.client, prefix: randomPrefix(), commandTimeoutMs: timeoutMs })
  })
  afterAll(async () => {
    await store?.close?.()
    await client?.quit()
    await server?.destroy()
  })

  const consume = (key: string) => store.apply([{ key, delta: 1, max: 1000, ifMissing: 'create' }])

  it('with the server stopped, 20 concurrent consumes reject with a StoreError within the bound; after a restart the store works again', async () => {
    expect(await consume('{b:1}:usage')).toMatchObject({ ok: true, values: [1] })
    await server.stop()
    // "Down" as the client sees it: a call racing the shutdown may have been written, which is
    // the paused-server case below.
    const connected = () => (kind === 'ioredis' ? client.client.status === 'ready' : client.client.isReady === true)
    for (let i = 0; i < 200 && connected(); i++) await sleep(10)
    const startedAt = performance.now()
    const outcomes = await Promise.allSettled(Array.from({ length: 20 }, () => consume('{b:1}:usage')))
    const elapsed = performance.now() - startedAt
    expect(outcomes.every((o) => o.status === 'rejected' && StoreError.isInstance(o.reason))).toBe(true)
    expect(elapsed).toBeLessThan(boundMs)
    for (const o of outcomes) expect((o as PromiseRejectedResult).reason.retryable).toBe(true) // nothing was sent

    await server.start()
    let result: unknown
    for (let attempt = 0; attempt < 100 && result === undefined; attempt++) {
      result = await consume('{b:1}:usage').catch(() => sleep(100).then(() => undefined))
    }
    // The server restarted empty (no persistence): the counter starts again.
    expect(result).toMatchObject({ ok: true, values: [1] })
  })

  it('a consume sent to a paused server rejects within the bound and is never applied later', async () => {
    const key = '{b:2}:usage'
    expect(await consume(key)).toMatchObject({ ok: true, values: [1] })
    server.pause()
    const startedAt = performance.now()
    try {
      const error = await consume(key).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(StoreError.isInstance(error)).toBe(true)
      // It was written to the socket: nobody can tell whether it ran, so it is not retryable.
      expect((error as StoreError).retryable).toBe(false)
      expect(performance.now() - startedAt).toBeLessThan(boundMs)
    } finally {
      server.resume()
    }
    // The server now runs the late script: past its deadline, it changes nothing.
    await sleep(200)
    expect(await store.get(key)).toEqual({ value: 1 })
    expect(await consume(key)).toMatchObject({ ok: true, values: [2] })
  })
})
