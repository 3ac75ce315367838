/**
 * One HTTP contender (Express, Koa or Fastify), run as its own process so the load generator (autocannon, in the parent)
 * never shares an event loop with the server. Prints `{"port": N}` once listening; over IPC,
 * `'start'` begins a measurement and `'stop'` answers `{ cpuMicros, requests }`: the server
 * process's CPU (user + system) and the requests it served in between.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createQuota } from '@andromeda/core'
import { expressQuota } from '@andromeda/express'
import { fastifyQuota } from '@andromeda/fastify'
import { koaQuota } from '@andromeda/koa'
import { createMemoryStore } from '@andromeda/memory'
import { createRedisStore } from '@andromeda/redis'
import rateLimitFastify from '@fastify/rate-limit'
import express, { type RequestHandler } from 'express'
import { rateLimit } from 'express-rate-limit'
import Fastify, { type FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import Koa from 'koa'
import { RedisStore } from 'rate-limit-redis'
import { RateLimiterMemory, RateLimiterRedis } from 'rate-limiter-flexible'

const HUGE = 1_000_000_000_000
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
// Every Redis key of this server carries the parent's run token, so the parent can delete them.
const prefix = `${process.env.BENCH_RUN_TOKEN ?? 'andromeda-bench'}-${randomBytes(4).toString('hex')}-`
const id = (req: express.Request) => req.ip ?? 'anonymous'

function redis(): Redis {
  const client = new Redis(REDIS_URL)
  client.on('error', (error) => console.error('redis:', error.message))
  return client
}

const quota = (store: 'memory' | 'redis') =>
  createQuota({
    name: `${prefix}api`,
    store: store === 'memory' ? createMemoryStore() : createRedisStore({ client: redis() }),
    limit: HUGE,
    period: 'hour',
  })

const expressMiddlewares: Record<string, () => RequestHandler | undefined> = {
  'bare express': () => undefined,
  'expressQuota + memory': () => expressQuota({ quota: quota('memory'), id }),
  // The peers never give units back by default; this is andromeda configured alike.
  'expressQuota + memory, refundWhen: false': () => expressQuota({ quota: quota('memory'), id, refundWhen: false }),
  'expressQuota + redis': () => expressQuota({ quota: quota('redis'), id }),
  'express-rate-limit (memory)': () =>
    rateLimit({ windowMs: 3_600_000, limit: HUGE, standardHeaders: 'draft-8', legacyHeaders: false }),
  'express-rate-limit + rate-limit-redis': () => {
    const client = redis()
    return rateLimit({
      windowMs: 3_600_000,
      limit: HUGE,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      store: new RedisStore({
        prefix,
        sendCommand: (command: string, ...args: string[]) => client.call(command, ...args) as Promise<never>,
      }),
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
  'rate-limiter-flexible (redis) middleware': () => {
    const limiter = new RateLimiterRedis({ storeClient: redis(), keyPrefix: prefix, points: HUGE, duration: 3600 })
    return (req, res, next) => {
      limiter.consume(id(req)).then(
        () => next(),
        () => res.status(429).end(),
      )
    }
  },
}

const koaMiddlewares: Record<string, () => Koa.Middleware | undefined> = {
  'bare koa': () => undefined,
  'koaQuota + memory': () => koaQuota({ quota: quota('memory'), id: (ctx) => ctx.ip }),
  'koaQuota + redis': () => koaQuota({ quota: quota('redis'), id: (ctx) => ctx.ip }),
}

const fastifyPlugins: Record<string, (app: FastifyInstance) => PromiseLike<unknown>> = {
  'bare fastify': async () => undefined,
  'fastifyQuota + memory': (app) => app.register(fastifyQuota, { quota: quota('memory'), id: (request) => request.ip }),
  'fastifyQuota + memory, refundWhen: false': (app) =>
    app.register(fastifyQuota, { quota: quota('memory'), id: (request) => request.ip, refundWhen: false }),
  'fastifyQuota + redis': (app) => app.register(fastifyQuota, { quota: quota('redis'), id: (request) => request.ip }),
  '@fastify/rate-limit (memory)': (app) => app.register(rateLimitFastify, { max: HUGE, timeWindow: 3_600_000 }),
}

let served = 0

async function listenFastify(name: string): Promise<Server> {
  const app = Fastify()
  await fastifyPlugins[name]!(app)
  app.get('/', async () => {
    served++
    return 'ok'
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  return app.server
}

async function listen(name: string): Promise<Server> {
  if (name in fastifyPlugins) return listenFastify(name)
  if (name in expressMiddlewares) {
    const app = express()
    const middleware = expressMiddlewares[name]!()
    if (middleware) app.use(middleware)
    app.get('/', (_req, res) => {
      served++
      res.send('ok')
    })
    const server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return server
  }
  if (name in koaMiddlewares) {
    const app = new Koa()
    const middleware = koaMiddlewares[name]!()
    if (middleware) app.use(middleware)
    app.use((ctx) => {
      served++
      ctx.body = 'ok'
    })
    const server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    return server
  }
  const known = [...Object.keys(expressMiddlewares), ...Object.keys(koaMiddlewares), ...Object.keys(fastifyPlugins)]
  throw new Error(`unknown contender ${name}; one of ${known.join(', ')}`)
}

const name = process.argv[2]
if (name !== undefined) {
  const server = await listen(name)
  console.log(JSON.stringify({ port: (server.address() as AddressInfo).port }))
  let started: { cpu: NodeJS.CpuUsage; served: number } | undefined
  process.on('message', (message) => {
    if (message === 'start') {
      started = { cpu: process.cpuUsage(), served }
      process.send?.('started')
    } else if (message === 'stop' && started) {
      const cpu = process.cpuUsage(started.cpu)
      process.send?.({ cpuMicros: cpu.user + cpu.system, requests: served - started.served })
    }
  })
  process.on('SIGTERM', () => process.exit(0))
  process.on('SIGINT', () => process.exit(0))
}
