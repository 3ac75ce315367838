import { randomBytes } from 'node:crypto'

export const REDIS_URL = 'redis://127.0.0.1:6379'
export {
  IN_CI,
  postgresAnswers,
  redisAnswers,
  requireService,
  SHARED_POSTGRES_URL as POSTGRES_URL,
} from '@andromeda/test-utils'

/** A namespace no other test (or run) uses. */
export function randomNamespace(tag = 't'): string {
  return `andromeda-test-${tag}-${randomBytes(6).toString('hex')}`
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
