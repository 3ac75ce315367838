import { randomBytes } from 'node:crypto'
import { createQuota } from '@andromeda/core'
import { createRedisStore } from '@andromeda/redis'
import { Redis, type RedisOptions } from 'ioredis'
import { RedisStore as RateLimitRedisStore } from 'rate-limit-redis'
import { RateLimiterRedis } from 'rate-limiter-flexible'
import { createClient } from 'redis'
import { type Contender, compare, type ScenarioResult } from './harness.js'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * An ioredis client of the bench's Redis with an error listener: an 'error' event without one
 * (a connection reset, or ioredis finding a reply it cannot place) would end the process.
 */
export function connectRedis(options: RedisOptions = {}): Redis {
  const client = new Redis(REDIS_URL, options)
  client.on('error', (error: Error) => console.error('redis:', error.message))
  return client
}
const HUGE = 1_000_000_000_000
export const FLOOR = 'floor: raw EVALSHA check-and-add (ioredis)'
export const ANDROMEDA_IOREDIS = 'andromeda createQuota + redis (ioredis)'
export const ANDROMEDA_IOREDIS_UNBATCHED = 'andromeda createQuota + redis (ioredis, batching off)'
export const ANDROMEDA_NODE_REDIS = 'andromeda createQuota + redis (node-redis)'
export const RATE_LIMITER_REDIS = 'rate-limiter-flexible RateLimiterRedis'

/**
 * The physical floor: the smallest script that checks and adds in one step (what any correct
 * Redis quota must do), sent with EVALSHA, one call per consume, on the same kind of connection.
 * KEYS[1] counter; ARGV[1] cost, ARGV[2] limit, ARGV[3] ttl ms (applied on create).
 */
const FLOOR_SCRIPT = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[1])
if current + cost > tonumber(ARGV[2]) then return -1 end
local next = redis.call('INCRBY', KEYS[1], cost)
if next == cost then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return next`

/**
 * Every key this run writes contains this token (quota names and peers' prefixes alike, with
 * no character the engine would percent-encode), so the run can delete exactly its own keys
 * and prove it left none.
 */
export const RUN_TOKEN = `andromeda-bench-${randomBytes(4).toString('hex')}`
const prefix = () => `${RUN_TOKEN}-${randomBytes(4).toString('hex')}-`

/** Delete what matches `pattern` (this run's keys only; never a whole-server flush). */
async function cleanup(client: Redis, pattern: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await client.unlink(...keys)
  } while (cursor !== '0')
}

/** Delete every key of this run. */
export async function deleteRunKeys(): Promise<void> {
  const admin = connectRedis()
  try {
    await cleanup(admin, `*${RUN_TOKEN}*`)
  } finally {
    admin.disconnect()
  }
}

/** Keys of this run still in Redis (0 after a clean run). */
export async function leftoverKeys(): Promise<number> {
  const admin = connectRedis()
  try {
    let cursor = '0'
    let count = 0
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `*${RUN_TOKEN}*`, 'COUNT', 1000)
      cursor = next
      count += keys.length
    } while (cursor !== '0')
    return count
  } finally {
    admin.disconnect()
  }
}

function contenders(keys: number, autoPipelining: boolean, admin: Redis): Contender[] {
  const key = (i: number) => (keys === 1 ? 'hot' : `k${i % keys}`)
  const io = () => connectRedis({ enableAutoPipelining: autoPipelining, lazyConnect: false })
  const withClient = (name: string, make: (client: Redis, p: string) => (i: number) => Promise<unknown>): Contender => {
    let client: Redis
    let p: string
    return {
      name,
      async setup() {
        client = io()
        p = prefix()
        this.keyTag = p
        await client.ping()
        const op = make(client, p)
        await op(0) // load scripts, warm the connection
        return op
      },
      async teardown() {
        await cleanup(admin, `*${p}*`)
        client.disconnect()
      },
    }
  }
  const andromeda = (batch: boolean) => (client: Redis, p: string) => {
    const store = createRedisStore({ client, ...(batch ? {} : { batch: false as const }) })
    const quota = createQuota({ name: p, store, limit: HUGE, ttlMs: 3_600_000 })
    return (i: number) => quota.consume(key(i))
  }
  const list: Contender[] = [
    withClient(ANDROMEDA_IOREDIS, andromeda(true)),
    withClient(ANDROMEDA_IOREDIS_UNBATCHED, andromeda(false)),
    withClient(FLOOR, (client, p) => {
      let sha = ''
      return async (i) => {
        if (!sha) sha = (await client.script('LOAD', FLOOR_SCRIPT)) as string
        return client.evalsha(sha, 1, `${p}${key(i)}`, 1, HUGE, 3_600_000)
      }
    }),
    withClient(RATE_LIMITER_REDIS, (client, p) => {
      const limiter = new RateLimiterRedis({ storeClient: client, keyPrefix: p, points: HUGE, duration: 3600 })
      return (i) => limiter.consume(key(i))
    }),
    withClient('rate-limit-redis increment', (client, p) => {
      const store = new RateLimitRedisStore({
        prefix: p,
        sendCommand: (command: string, ...args: string[]) => client.call(command, ...args) as Promise<never>,
      })
      store.init({ windowMs: 3_600_000 } as never)
      return (i) => store.increment(key(i))
    }),
  ]
  if (!autoPipelining) {
    let client: ReturnType<typeof createClient>
    let p: string
    list.splice(2, 0, {
      name: ANDROMEDA_NODE_REDIS,
      async setup() {
        client = createClient({ url: REDIS_URL })
        client.on('error', () => {})
        await client.connect()
        p = prefix()
        this.keyTag = p
        const quota = createQuota({ name: p, store: createRedisStore({ client }), limit: HUGE, ttlMs: 3_600_000 })
        await quota.consume(key(0))
        return (i) => quota.consume(key(i))
      },
      async teardown() {
        await cleanup(admin, `*${p}*`)
        client.destroy()
      },
    })
  }
  return list
}

/** consume() through createQuota + Redis store vs the Redis limiters users pick instead, vs the floor. */
export async function benchRedis(options: {
  rounds: number
  total: number
  quick: boolean
}): Promise<ScenarioResult[]> {
  const admin = connectRedis()
  const results: ScenarioResult[] = []
  try {
    for (const autoPipelining of options.quick ? [false] : [false, true]) {
      for (const keys of [1, 10_000]) {
        for (const concurrency of options.quick ? [1, 50] : [1, 50, 200]) {
          const scenario = `redis path, ${keys === 1 ? '1 hot key' : '10k keys'}, concurrency ${concurrency}, auto-pipelining ${autoPipelining ? 'on' : 'off'}`
          console.error(`  ${scenario}`)
          // Fewer ops at concurrency 1: each waits a whole round trip.
          const total = concurrency === 1 ? Math.ceil(options.total / 4) : options.total
          results.push(
            await compare(scenario, contenders(keys, autoPipelining, admin), {
              ...options,
              total,
              concurrency,
              latency: true,
            }),
          )
        }
      }
    }
  } finally {
    admin.disconnect()
  }
  return results
}

/**
 * Commands each contender's client sends per consume on a present key, counted with MONITOR
 * (script-internal calls skipped), with `concurrency` consumes in flight at a time.
 */
export async function commandsPerConsume(concurrency: number): Promise<Array<{ name: string; commands: number }>> {
  const admin = connectRedis()
  const monitor = await admin.monitor()
  // Disconnecting while MONITOR lines still arrive makes ioredis report each as an error.
  let closing = false
  monitor.on('error', (error: Error) => {
    if (!closing) console.error('redis monitor:', error.message)
  })
  const seen: string[][] = []
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua') seen.push(args)
  })
  const out: Array<{ name: string; commands: number }> = []
  try {
    for (const contender of contenders(1, false, admin)) {
      const op = await contender.setup()
      await op(1) // the key exists now
      await new Promise((resolve) => setTimeout(resolve, 100))
      seen.length = 0
      const count = 1000
      let next = 0
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < count) await op(next++)
        }),
      )
      await new Promise((resolve) => setTimeout(resolve, 300))
      // Count the commands that name this contender's keys (MONITOR lags under load).
      const tag = contender.keyTag!
      const mine = seen.filter((args) => args.some((a) => a.includes(tag)))
      out.push({ name: contender.name, commands: mine.length / count })
      await contender.teardown?.()
    }
  } finally {
    closing = true
    monitor.disconnect()
    admin.disconnect()
  }
  return out
}
