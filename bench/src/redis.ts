import { randomBytes } from 'node:crypto'
import { createQuota } from '@andromeda/core'
import { createRedisStore } from '@andromeda/redis'
import { Redis } from 'ioredis'
import { RedisStore as RateLimitRedisStore } from 'rate-limit-redis'
import { RateLimiterRedis } from 'rate-limiter-flexible'
import { createClient } from 'redis'
import { type Contender, type ScenarioResult, compare } from './harness.js'

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const HUGE = 1_000_000_000_000
export const FLOOR = 'floor: raw EVALSHA check-and-add (ioredis)'

/**
 * The physical floor: the smallest script that checks and adds in one step (what any correct
 * Redis quota must do), sent with EVALSHA on the same kind of connection.
 * KEYS[1] counter; ARGV[1] cost, ARGV[2] limit, ARGV[3] ttl ms (applied on create).
 */
const FLOOR_SCRIPT = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local cost = tonumber(ARGV[1])
if current + cost > tonumber(ARGV[2]) then return -1 end
local next = redis.call('INCRBY', KEYS[1], cost)
if next == cost then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return next`

const prefix = () => `bench:${randomBytes(4).toString('hex')}:`

/** Delete what a round wrote (its own random prefix only; never a whole-server flush). */
async function cleanup(client: Redis, pattern: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await client.unlink(...keys)
  } while (cursor !== '0')
}

function contenders(keys: number, autoPipelining: boolean, admin: Redis): Contender[] {
  const key = (i: number) => (keys === 1 ? 'hot' : `k${i % keys}`)
  const io = () => new Redis(REDIS_URL, { enableAutoPipelining: autoPipelining, lazyConnect: false })
  const withClient = (name: string, make: (client: Redis, p: string) => (i: number) => Promise<unknown>): Contender => {
    let client: Redis
    let p: string
    return {
      name,
      async setup() {
        client = io()
        p = prefix()
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
  const list: Contender[] = [
    withClient('andromeda createQuota + redis (ioredis)', (client, p) => {
      const quota = createQuota({ name: p, store: createRedisStore({ client }), limit: HUGE, ttlMs: 3_600_000 })
      return (i) => quota.consume(key(i))
    }),
    withClient(FLOOR, (client, p) => {
      let sha = ''
      return async (i) => {
        if (!sha) sha = (await client.script('LOAD', FLOOR_SCRIPT)) as string
        return client.evalsha(sha, 1, `${p}${key(i)}`, 1, HUGE, 3_600_000)
      }
    }),
    withClient('rate-limiter-flexible RateLimiterRedis', (client, p) => {
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
    list.splice(1, 0, {
      name: 'andromeda createQuota + redis (node-redis)',
      async setup() {
        client = createClient({ url: REDIS_URL })
        await client.connect()
        p = prefix()
        const quota = createQuota({ name: p, store: createRedisStore({ client }), limit: HUGE, ttlMs: 3_600_000 })
        await quota.consume(key(0))
        return (i) => quota.consume(key(i))
      },
      async teardown() {
        await cleanup(admin, `*${p}*`)
        await client.quit()
      },
    })
  }
  return list
}

/** consume() through createQuota + Redis store vs the Redis limiters users pick instead, vs the floor. */
export async function benchRedis(options: { rounds: number; total: number; quick: boolean }): Promise<ScenarioResult[]> {
  const admin = new Redis(REDIS_URL)
  const results: ScenarioResult[] = []
  try {
    for (const autoPipelining of options.quick ? [false] : [false, true]) {
      for (const keys of [1, 10_000]) {
        for (const concurrency of options.quick ? [50] : [1, 50, 200]) {
          const scenario = `redis path, ${keys === 1 ? '1 hot key' : '10k keys'}, concurrency ${concurrency}, auto-pipelining ${autoPipelining ? 'on' : 'off'}`
          console.error(`  ${scenario}`)
          results.push(await compare(scenario, contenders(keys, autoPipelining, admin), { ...options, concurrency }))
        }
      }
    }
  } finally {
    admin.disconnect()
  }
  return results
}

/** Commands each contender's client sends per consume on a present key, counted with MONITOR (script-internal calls skipped). */
export async function commandsPerConsume(): Promise<Array<{ name: string; commands: number }>> {
  const admin = new Redis(REDIS_URL)
  const monitor = await admin.monitor()
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
      const count = 100
      for (let i = 0; i < count; i++) await op(i)
      await new Promise((resolve) => setTimeout(resolve, 200))
      // Only this contender runs now; count the commands that name its key (ignores other clients).
      const mine = seen.filter((args) => args.some((a) => a.includes('bench')))
      out.push({ name: contender.name, commands: mine.length / count })
      await contender.teardown?.()
    }
  } finally {
    monitor.disconnect()
    admin.disconnect()
  }
  return out
}
