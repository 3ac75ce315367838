import { randomBytes } from 'node:crypto'
import pg from 'pg'

export const REDIS_URL = 'redis://127.0.0.1:6379'
export const POSTGRES_URL = 'postgresql://postgres@127.0.0.1:5432/test'
export { IN_CI, redisAnswers, requireService } from '@andromeda/test-utils'

/** A namespace no other test (or run) uses. */
export function randomNamespace(tag = 't'): string {
  return `andromeda-test-${tag}-${randomBytes(6).toString('hex')}`
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
