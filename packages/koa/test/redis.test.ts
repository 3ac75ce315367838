import type { Server } from 'node:http'
import { createQuota } from '@andromeda/core'
import { createRedisStore } from '@andromeda/redis'
import { Redis } from 'ioredis'
import Koa from 'koa'
import request from 'supertest'
import { afterAll, describe, expect, it } from 'vitest'
import { koaQuota } from '../src/index.js'
import {
  SHARED_REDIS as REDIS,
  deletePrefix,
  parseRateLimitItems as parseItems,
  randomPrefix,
  redisAnswers,
  requireService,
} from '@andromeda/test-utils'

const available = requireService(await redisAnswers(REDIS.port, REDIS.host), `Redis on ${REDIS.host}:${REDIS.port}`)

describe.runIf(available)('koaQuota on the Redis store', () => {
  const client = new Redis({ ...REDIS, maxRetriesPerRequest: 1 })
  const prefix = randomPrefix('http')
  const servers: Server[] = []
  afterAll(async () => {
    for (const server of servers) server.close()
    await deletePrefix(client, prefix)
    client.disconnect()
  })

  function app(limit: number) {
    const quota = createQuota({ name: 'api', store: createRedisStore({ client, prefix }), limit, period: 'hour' })
    const koa = new Koa()
    koa.silent = true
    koa.use(koaQuota({ quota, id: (ctx) => ctx.get('x-user') || 'anonymous' }))
    koa.use((ctx) => {
      if (ctx.path === '/throws') throw new Error('boom')
      ctx.body = 'ok'
    })
    const server = koa.listen(0)
    servers.push(server)
    return { server, quota }
  }

  it('grants 3 requests with falling RateLimit remaining, then answers 429 with Retry-After', async () => {
    const { server } = app(3)
    const remaining: number[] = []
    for (let i = 0; i < 3; i++) {
      const res = await request(server).get('/ok').expect(200)
      remaining.push(parseItems(res.headers.ratelimit).api!.r!)
    }
    expect(remaining).toEqual([2, 1, 0])
    const refused = await request(server).get('/ok').expect(429)
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(refused.headers['retry-after']).toMatch(/^\d+$/)
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect(parseItems(refused.headers.ratelimit).api!.r).toBe(0)
    expect(JSON.parse(refused.text)['violated-policies']).toEqual(['api'])
  })

  it('gives back the units of a handler that throws', async () => {
    const { server, quota } = app(3)
    await request(server).get('/throws').set('x-user', 'thrower').expect(500)
    expect((await quota.get('thrower')).usage).toBe(0)
  })
})
