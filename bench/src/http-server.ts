/**
 * One HTTP contender, run as its own process so the load generator (autocannon, in the parent)
 * never shares an event loop with the server. Prints `{"port": N}` once listening.
 */
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { createQuota } from '@andromeda/core'
import { expressQuota } from '@andromeda/express'
import { createMemoryStore } from '@andromeda/memory'
import { createRedisStore } from '@andromeda/redis'
import express, { type RequestHandler } from 'express'
import { rateLimit } from 'express-rate-limit'
import { Redis } from 'ioredis'
import { RedisStore } from 'rate-limit-redis'
import { RateLimiterMemory } from 'rate-limiter-flexible'

const HUGE = 1_000_000_000_000
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const prefix = `bench:${randomBytes(4).toString('hex')}:`
const id = (req: express.Request) => req.ip ?? 'anonymous'

const middlewares: Record<string, () => RequestHandler | undefined> = {
  'bare express': () => undefined,
  'expressQuota + memory': () =>
    expressQuota({ quota: createQuota({ name: 'api', store: createMemoryStore(), limit: HUGE, period: 'hour' }), id }),
  'expressQuota + redis': () =>
    expressQuota({
      quota: createQuota({ name: `${prefix}api`, store: createRedisStore({ client: new Redis(REDIS_URL) }), limit: HUGE, period: 'hour' }),
      id,
    }),
  'express-rate-limit (memory)': () => rateLimit({ windowMs: 3_600_000, limit: HUGE, standardHeaders: 'draft-8', legacyHeaders: false }),
  'express-rate-limit + rate-limit-redis': () => {
    const client = new Redis(REDIS_URL)
    return rateLimit({
      windowMs: 3_600_000,
      limit: HUGE,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      store: new RedisStore({ prefix, sendCommand: (command: string, ...args: string[]) => client.call(command, ...args) as Promise<never> }),
    })
  },
  'rate-limiter-flexible (memory) middleware': () => {
    const limiter = new RateLimiterMemory({ points: HUGE, duration: 3600 })
    return (req, res, next) => {
      limiter.consume(id(req)).then(
        () => next(),
        () => res.status(429).end(),
      )
    }
  },
}

const name = process.argv[2] ?? ''
const make = middlewares[name]
if (!make) throw new Error(`unknown contender ${name}; one of ${Object.keys(middlewares).join(', ')}`)
const app = express()
const middleware = make()
if (middleware) app.use(middleware)
app.get('/', (_req, res) => {
  res.send('ok')
})
const server = app.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }))
})
process.on('SIGTERM', () => process.exit(0))

