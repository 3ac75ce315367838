import type { Driver } from './driver.js'
import { ioredisDriver } from './ioredis-driver.js'
import { nodeRedisDriver } from './node-redis-driver.js'

/**
 * Thin adapters over the client libraries a user already has: ioredis `Redis` / `Cluster` and
 * node-redis (`redis` / `@redis/client`) clients and clusters, RESP2 or RESP3. Only what the
 * store needs: send EVALSHA / EVAL routed by the first key, read each primary's clock, and tell
 * whether a failed command surely never reached the server.
 *
 * Nothing here imports the libraries: they are optional peer dependencies, recognised by shape.
 */

/**
 * An ioredis `Redis` or `Cluster` (v5.8+ or v6), as far as the store uses it. Optional members
 * admit `undefined` so ioredis's own types fit under `exactOptionalPropertyTypes`.
 */
export interface IoRedisLike {
  status: string
  options?:
    | { keyPrefix?: string | undefined; redisOptions?: { keyPrefix?: string | undefined } | undefined }
    | undefined
  isCluster?: boolean
  evalsha(sha: string, numKeys: number, ...keysAndArgs: string[]): Promise<unknown>
  eval(script: string, numKeys: number, ...keysAndArgs: string[]): Promise<unknown>
  connect(): Promise<void>
  on(event: string, listener: (...args: any[]) => void): unknown
  off(event: string, listener: (...args: any[]) => void): unknown
}

/** A node-redis client (`createClient`) or cluster (`createCluster`), v5 or v6, as far as the store uses it. */
export interface NodeRedisLike {
  readonly isOpen: boolean
  sendCommand(...args: any[]): Promise<unknown>
}

/** Any client `createRedisStore` accepts. */
export type RedisClientLike = IoRedisLike | NodeRedisLike

function isIoRedis(client: object): client is IoRedisLike {
  const c = client as Partial<IoRedisLike>
  return typeof c.status === 'string' && typeof c.evalsha === 'function' && typeof c.eval === 'function'
}

function isNodeRedis(client: object): client is NodeRedisLike {
  const c = client as Partial<NodeRedisLike>
  return typeof c.sendCommand === 'function' && 'isOpen' in c
}

/** Build the driver for a user's client; undefined when the client is not recognised. */
export function toDriver(client: unknown): Driver | undefined {
  if (typeof client !== 'object' || client === null) return undefined
  if (isIoRedis(client)) return ioredisDriver(client)
  if (isNodeRedis(client)) return nodeRedisDriver(client)
  return undefined
}
