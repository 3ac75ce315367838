import { randomBytes } from 'node:crypto'
import { Socket } from 'node:net'
import pg from 'pg'

export const REDIS_URL = 'redis://127.0.0.1:6379'
export const POSTGRES_URL = 'postgresql://postgres@127.0.0.1:5432/test'
export const IN_CI = process.env.CI === 'true'

/** A namespace no other test (or run) uses. */
export function randomNamespace(tag = 't'): string {
  return `andromeda-test-${tag}-${randomBytes(6).toString('hex')}`
}

/** True when Redis answers PING on 127.0.0.1:`port` within a second. */
export function redisAnswers(port = 6379): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket()
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(1000, () => done(false))
    socket.once('error', () => done(false))
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'))
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')))
  })
}

/** True when PostgreSQL accepts a query at `POSTGRES_URL`. */
export async function postgresAnswers(): Promise<boolean> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 1000 })
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
 * Whether suites that need `what` may run. Under CI=true they must: a missing service fails the
 * run. Elsewhere they skip with a printed reason.
 */
export function requireService(available: boolean, what: string): boolean {
  if (available) return true
  if (IN_CI) throw new Error(`${what} is required when CI=true but is not available`)
  console.warn(`skipping: ${what} is not available`)
  return false
}

/** Delete every key under one random namespace (SCAN + UNLINK); the rest of the server is left alone. */
export async function deleteNamespace(adapter: { getClient(): Promise<unknown> }, namespace: string): Promise<void> {
  const client = (await adapter.getClient()) as {
    scanIterator(options: { MATCH: string; COUNT: number }): AsyncIterable<string[]>
    unlink(keys: string[]): Promise<number>
  }
  for await (const keys of client.scanIterator({ MATCH: `${namespace}*`, COUNT: 500 })) {
    if (keys.length > 0) await client.unlink(keys)
  }
}
