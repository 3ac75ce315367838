import { randomBytes } from 'node:crypto'
import { Socket } from 'node:net'
import type { Redis } from 'ioredis'

/** The shared Redis every CI run provides; never flushed, keys live under a random prefix. */
export const REDIS = { host: '127.0.0.1', port: 6379 }

/** True when something answers PING within a second. */
export function redisReachable(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('error', () => done(false))
    socket.connect(REDIS.port, REDIS.host, () => socket.write('PING\r\n'))
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')))
  })
}

/**
 * Whether the Redis suite runs: under CI=true Redis must be there (the run fails otherwise);
 * elsewhere the suite is skipped with the reason printed.
 */
export async function redisAvailable(): Promise<boolean> {
  const up = await redisReachable()
  if (up) return true
  const reason = `Redis is not reachable on ${REDIS.host}:${REDIS.port}`
  if (process.env.CI === 'true') throw new Error(`${reason}; CI requires it`)
  console.warn(`${reason}: skipping the Redis middleware tests`)
  return false
}

export function randomPrefix(): string {
  return `andromeda-test:http:${randomBytes(6).toString('hex')}:`
}

/** Delete this test's keys only (SCAN by prefix), then disconnect. */
export async function cleanUp(client: Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500)
    cursor = next
    if (keys.length > 0) await client.del(...keys)
  } while (cursor !== '0')
  client.disconnect()
}
