import { createQuota } from '@andromeda/core'
import { createRedisStore } from '@andromeda/redis'
import express from 'express'
import { Redis } from 'ioredis'
import request from 'supertest'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { expressQuota } from '../src/index.js'
import {
  SHARED_REDIS as REDIS,
  deletePrefix,
  parseRateLimitItems as parseItems,
  randomPrefix,
  redisAnswers,
  requireService,
} from '@andromeda/test-utils'

const available = requireService(await redisAnswers(REDIS.port, REDIS.host), `Redis on ${REDIS.host}:${REDIS.port}`)

describe.runIf(available)('expressQuota on the Redis store', () => {
  const client = new Redis({ ...REDIS, lazyConnect: false, maxRetriesPerRequest: 1 })
  const prefix = randomPrefix('http')
  afterAll(async () => {
    await deletePrefix(client, prefix)
    client.disconnect()
  })

  function app(limit: number) {
    const quota = createQuota({ name: 'api', store: createRedisStore({ client, prefix }), limit, period: 'hour' })
    const server = express()
    server.use(expressQuota({ quota, id: (req) => req.get('x-user') ?? 'anonymous' }))
    server.get('/ok', (_req, res) => {
      res.send('ok')
    })
    server.get('/throws', () => {
      throw new Error('boom')
    })
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
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect(refused.headers['retry-after']).toMatch(/^\d+$/)
    expect(parseItems(refused.headers.ratelimit).api!.r).toBe(0)
    expect(JSON.parse(refused.text)['violated-policies']).toEqual(['api'])
  })

  it('gives back the units of a handler that throws', async () => {
    const { server, quota } = app(3)
    await request(server).get('/throws').set('x-user', 'thrower').expect(500)
    await vi.waitFor(async () => expect((await quota.get('thrower')).usage).toBe(0))
  })
})
