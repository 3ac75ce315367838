import { randomBytes } from 'node:crypto'
import { createQuota } from '@andromeda/core'
import { createKeyvStore } from '@andromeda/keyv'
import { postgresAnswers, redisAnswers } from '@andromeda/test-utils'
import KeyvPostgres from '@keyv/postgres'
import KeyvRedis from '@keyv/redis'
import Keyv from 'keyv'
import pg from 'pg'
import { type Contender, compare, type ScenarioResult } from './harness.js'
import { RUN_TOKEN } from './redis.js'

const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test'
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const HUGE = 1_000_000_000_000
export const POSTGRES_FLOOR = 'floor: one UPDATE … RETURNING per consume (same pool settings)'

/** True when PostgreSQL answers at POSTGRES_URL. */
export const postgresReachable = (): Promise<boolean> => postgresAnswers(POSTGRES_URL)

/** Delete what the Redis contender wrote (its own namespace only; never a whole-server flush). */
async function deleteNamespace(adapter: KeyvRedis<unknown>, namespace: string): Promise<void> {
  const client = (await adapter.getClient()) as unknown as {
    scanIterator(options: { MATCH: string; COUNT: number }): AsyncIterable<string[]>
    unlink(keys: string[]): Promise<number>
  }
  for await (const keys of client.scanIterator({ MATCH: `${namespace}*`, COUNT: 1000 }))
    if (keys.length > 0) await client.unlink(keys)
}

/**
 * consume() through createQuota + createKeyvStore on @keyv/postgres (the SQL path: one function
 * call per consume, globally atomic) beside the floor, the smallest correct check-and-add (one
 * `UPDATE … RETURNING` on a present row, sent on a pg pool of the store's size, 10), and beside
 * the same createKeyvStore on @keyv/redis (the Redis path) when Redis answers.
 */
export async function benchPostgres(options: {
  rounds: number
  total: number
  quick: boolean
  withRedis: boolean
}): Promise<ScenarioResult[]> {
  const { withRedis } = options
  const suffix = randomBytes(4).toString('hex')
  const table = `bench_counters_${suffix}`
  const keyvTable = `bench_keyv_${suffix}`
  const floorTable = `bench_floor_${suffix}`
  const admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 10 })
  admin.on('error', () => {})
  const results: ScenarioResult[] = []
  try {
    await admin.query(`CREATE TABLE ${floorTable} (storage_key bytea PRIMARY KEY, value bigint NOT NULL)`)
    for (const keys of [1, 10_000]) {
      const key = (i: number) => (keys === 1 ? 'hot' : `k${i % keys}`)
      await admin.query(
        `INSERT INTO ${floorTable} SELECT convert_to('k' || i, 'UTF8'), 0 FROM generate_series(0, $1) AS i ON CONFLICT DO NOTHING`,
        [keys],
      )
      await admin.query(`INSERT INTO ${floorTable} VALUES (convert_to('hot', 'UTF8'), 0) ON CONFLICT DO NOTHING`)
      const contenders: Contender[] = [
        (() => {
          let adapter: KeyvPostgres
          let store: ReturnType<typeof createKeyvStore>
          return {
            name: 'andromeda createQuota + @keyv/postgres (SQL path)',
            async setup() {
              adapter = new KeyvPostgres({ uri: POSTGRES_URL, table: keyvTable })
              store = createKeyvStore({ keyv: new Keyv({ store: adapter, namespace: 'bench' }), table })
              const quota = createQuota({ name: 'bench', store, limit: HUGE, ttlMs: 3_600_000 })
              await quota.consume(key(0))
              return (i: number) => quota.consume(key(i))
            },
            async teardown() {
              await store.close?.()
              await adapter.disconnect()
            },
          }
        })(),
        (() => {
          let pool: pg.Pool
          return {
            name: POSTGRES_FLOOR,
            async setup() {
              pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 10 })
              pool.on('error', () => {})
              const text = `UPDATE ${floorTable} SET value = value + $2 WHERE storage_key = convert_to($1, 'UTF8') AND value + $2 <= $3 RETURNING value`
              const op = (i: number) => pool.query(text, [key(i), 1, HUGE])
              await op(0)
              return op
            },
            async teardown() {
              await pool.end()
            },
          }
        })(),
      ]
      if (withRedis) {
        let adapter: KeyvRedis<unknown>
        let store: ReturnType<typeof createKeyvStore>
        // Under the run's token, so the run's check for keys left in Redis covers these too.
        const namespace = `${RUN_TOKEN}-keyv`
        contenders.push({
          name: 'andromeda createQuota + @keyv/redis (Redis path)',
          async setup() {
            adapter = new KeyvRedis(REDIS_URL)
            store = createKeyvStore({ keyv: new Keyv({ store: adapter, namespace }) })
            const quota = createQuota({ name: 'bench', store, limit: HUGE, ttlMs: 3_600_000 })
            await quota.consume(key(0))
            return (i: number) => quota.consume(key(i))
          },
          async teardown() {
            await store.close?.()
            await deleteNamespace(adapter, namespace)
            await adapter.disconnect()
          },
        })
      }
      for (const concurrency of options.quick ? [50] : [1, 50, 200]) {
        const scenario = `postgres path, ${keys === 1 ? '1 hot key' : '10k keys'}, concurrency ${concurrency}`
        console.error(`  ${scenario}`)
        results.push(await compare(scenario, contenders, { ...options, concurrency }))
      }
    }
  } finally {
    await admin.query(`DROP TABLE IF EXISTS ${floorTable}, ${keyvTable}, ${table}, ${table}_holds`).catch(() => {})
    for (const routine of ['apply', 'get', 'seed', 'set', 'delete', 'lock', 'unlock']) {
      await admin.query(`DROP FUNCTION IF EXISTS ${table}_${routine}_v1`).catch(() => {})
    }
    await admin.end()
  }
  return results
}

/** True when Redis answers at REDIS_URL (the Redis contender runs only then). */
export function redisReachable(): Promise<boolean> {
  const { hostname, port } = new URL(REDIS_URL)
  return redisAnswers(Number(port || 6379), hostname)
}
