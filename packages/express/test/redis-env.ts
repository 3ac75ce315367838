import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'

/** The shared Redis every CI run provides; never flushed, keys live under a random prefix. */
export const REDIS = { host: '127.0.0.1', port: 6379 }

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
