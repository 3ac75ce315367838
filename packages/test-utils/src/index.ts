import { randomBytes } from 'node:crypto'
import { Socket } from 'node:net'
import { type CounterStore, StoreError, wrapStore } from '@andromeda/core'
import { createMemoryStore } from '@andromeda/memory'
import pg from 'pg'

export const IN_CI = process.env.CI === 'true'

/** True when a Redis server answers PING on host:port within a second. */
export function redisAnswers(port = 6379, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('error', () => done(false))
    socket.connect(port, host, () => socket.write('PING\r\n'))
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')))
  })
}

/** The PostgreSQL every machine of this project runs (trust auth, database `test`). */
export const SHARED_POSTGRES_URL = 'postgresql://postgres@127.0.0.1:5432/test'

/** True when PostgreSQL at `url` accepts a query within a second. */
export async function postgresAnswers(url = SHARED_POSTGRES_URL): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 })
  client.on('error', () => {})
  try {
    await client.connect()
    await client.query('SELECT 1')
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * Whether suites that need `what` may run. Under CI=true they must: a missing service fails
 * the run. Elsewhere they skip, with the reason printed.
 */
export function requireService(available: boolean, what: string): boolean {
  if (available) return true
  if (IN_CI) throw new Error(`${what} is required when CI=true but is not available`)
  console.warn(`skipping: ${what} is not available`)
  return false
}

/** A store whose every call fails as an unreachable backend would. */
export function downStore(): CounterStore {
  const fail = async (): Promise<never> => {
    throw new StoreError('connection refused', { retryable: true })
  }
  return everyMethod(fail)
}

/** A store whose calls never answer: the caller's own time bound must cut in. */
export function hangingStore(): CounterStore {
  return everyMethod(() => new Promise<never>(() => {}))
}

function everyMethod(call: () => Promise<never>): CounterStore {
  return wrapStore(createMemoryStore(), { call })
}

/** Parse a RateLimit field, `"name";r=2;t=60, "other";r=1`, into `{ name: { r: 2, t: 60 }, ... }`. */
export function parseRateLimitItems(header: string | undefined): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {}
  for (const item of (header ?? '').split(/,\s*/).filter(Boolean)) {
    const [name, ...params] = item.split(';')
    const entry: Record<string, number> = {}
    for (const param of params) {
      const [key, value] = param.split('=')
      entry[key!] = Number(value)
    }
    out[JSON.parse(name!)] = entry
  }
  return out
}

/** The Redis every development machine and CI run provides. Never flushed: tests use random prefixes. */
export const SHARED_REDIS = { host: '127.0.0.1', port: 6379 } as const

/** A fresh key prefix, so tests never see each other's keys. */
export function randomPrefix(tag = 't'): string {
  return `andromeda-test:${tag}:${randomBytes(6).toString('hex')}:`
}

/** The part of an ioredis client `deletePrefix` needs. */
interface ScanningClient {
  scan(cursor: string, match: 'MATCH', pattern: string, count: 'COUNT', n: number): Promise<[string, string[]]>
  del(...keys: string[]): Promise<number>
}

/** Delete the keys under one prefix only (SCAN + DEL); the rest of the server is left alone. */
export async function deletePrefix(client: ScanningClient, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
    cursor = next
    if (keys.length > 0) await client.del(...keys)
  } while (cursor !== '0')
}

export { command as adminCommand, info as adminInfo, type Reply, ReplyError } from './admin.js'
export { type LagProxy, startLagProxy } from './lag-proxy.js'
export { freePort, hasRedisServerBinary, type OwnRedis, startRedis, waitFor } from './own-redis.js'
export { type ReplicatedCluster, startReplicatedCluster } from './replicated-cluster.js'
export { type FailoverTiming, ReplicatedNode } from './replicated-node.js'
export { type SentinelGroup, startSentinelGroup } from './sentinel-group.js'
