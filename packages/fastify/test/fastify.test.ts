import { createQuota } from '@andromeda/core'
import { createMemoryStore } from '@andromeda/memory'
import { hourlyQuota } from '@andromeda/middleware-cases'
import { parseRateLimitItems as parseItems } from '@andromeda/test-utils'
import Fastify, { type FastifyInstance } from 'fastify'
import Fastify4 from 'fastify4'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { defaultRefundWhen, fastifyQuota, type SettleOutcome } from '../src/index.js'
import type { FastifyFactory } from './harness.js'

// What only Fastify has: inject(), registration per scope (encapsulation), per-route opt-in and
// opt-out, the hook the plugin charges in. Everything else is in the shared table (test/cases.test.ts).

const apps: FastifyInstance[] = []
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()))
})

function app(make: FastifyFactory): FastifyInstance {
  const instance = make()
  apps.push(instance)
  return instance
}

/** A 3-per-hour (or `limit`) memory quota on a clock held at the window's start, and what it gave back. */
const hourly = (limit = 3) => hourlyQuota(createMemoryStore(), limit)

describe.each([
  ['Fastify 5', Fastify],
  ['Fastify 4', Fastify4 as unknown as FastifyFactory],
])('fastifyQuota on %s', (_name, make) => {
  it('works through inject(): grants with headers, refuses with 429 problem+json, refunds a 500 once', async () => {
    const { quota, compensations } = hourly(2)
    const outcomes: SettleOutcome[] = []
    const fastify = app(make)
    await fastify.register(fastifyQuota, {
      quota,
      id: () => 'u',
      refundWhen: (outcome) => {
        outcomes.push(outcome)
        return defaultRefundWhen(outcome)
      },
    })
    fastify.get('/ok', async (request) => ({ remaining: request.quota?.remaining }))
    fastify.get('/fails', async () => {
      throw new Error('boom')
    })

    const granted = await fastify.inject({ method: 'GET', url: '/ok' })
    expect(granted.statusCode).toBe(200)
    expect(granted.json()).toEqual({ remaining: 1 })
    expect(granted.headers['ratelimit-policy']).toBe('"api";q=2;w=3600')

    const failed = await fastify.inject({ method: 'GET', url: '/fails' })
    expect(failed.statusCode).toBe(500)
    expect(parseItems(String(failed.headers.ratelimit)).api!.r).toBe(0)
    await vi.waitFor(() => expect(compensations).toEqual([1]))
    expect(outcomes).toHaveLength(2)
    expect(outcomes[0]).toEqual({ status: 200, aborted: false })
    expect(outcomes[1]).toMatchObject({ status: 500, aborted: false })
    expect((outcomes[1]!.error as Error).message).toBe('boom')

    await fastify.inject({ method: 'GET', url: '/ok' })
    const refused = await fastify.inject({ method: 'GET', url: '/ok' })
    expect(refused.statusCode).toBe(429)
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1)
    expect(refused.json()).toMatchObject({ status: 429, 'violated-policies': ['api'] })
    expect((await quota.get('u')).usage).toBe(2)
  })

  it('charges only the routes of the scope it is registered in', async () => {
    const { quota } = hourly()
    const fastify = app(make)
    await fastify.register(async (scope) => {
      await scope.register(fastifyQuota, { quota, id: () => 'u' })
      scope.get('/api/work', async () => 'done')
    })
    fastify.get('/health', async () => 'up')
    const work = await fastify.inject({ method: 'GET', url: '/api/work' })
    expect(work.headers.ratelimit).toBe('"api";r=2;t=' + parseItems(String(work.headers.ratelimit)).api!.t)
    const health = await fastify.inject({ method: 'GET', url: '/health' })
    expect(health.headers.ratelimit).toBeUndefined()
    expect((await quota.get('u')).usage).toBe(1)
  })

  it('leaves out a route with config: { quota: false }', async () => {
    const { quota } = hourly()
    const fastify = app(make)
    await fastify.register(fastifyQuota, { quota, id: () => 'u' })
    fastify.get('/metrics', { config: { quota: false } }, async () => 'free')
    fastify.get('/work', async () => 'done')
    expect((await fastify.inject({ method: 'GET', url: '/metrics' })).headers.ratelimit).toBeUndefined()
    expect((await fastify.inject({ method: 'GET', url: '/work' })).headers.ratelimit).toBeDefined()
    expect((await quota.get('u')).usage).toBe(1)
  })

  it('with global: false charges only routes that opt in with fastify.quotaHook(), each with its own quota', async () => {
    const reads = createQuota({ name: 'reads', store: createMemoryStore(), limit: 10 })
    const writes = createQuota({ name: 'writes', store: createMemoryStore(), limit: 10 })
    const fastify = app(make)
    await fastify.register(fastifyQuota, { global: false, id: () => 'u' })
    fastify.get('/item', { onRequest: fastify.quotaHook({ quota: reads }) }, async () => 'read')
    fastify.post('/item', { onRequest: fastify.quotaHook({ quota: writes, cost: 2 }) }, async () => 'written')
    fastify.get('/free', async () => 'free')
    expect((await fastify.inject({ method: 'GET', url: '/item' })).headers.ratelimit).toBe('"reads";r=9')
    expect((await fastify.inject({ method: 'POST', url: '/item' })).headers.ratelimit).toBe('"writes";r=8')
    expect((await fastify.inject({ method: 'GET', url: '/free' })).headers.ratelimit).toBeUndefined()
    expect((await reads.get('u')).usage).toBe(1)
    expect((await writes.get('u')).usage).toBe(2)
  })

  it("with hook: 'preHandler' the id may come from the parsed body", async () => {
    const { quota } = hourly()
    const fastify = app(make)
    await fastify.register(fastifyQuota, {
      quota,
      hook: 'preHandler',
      id: (request) => (request.body as { user: string }).user,
    })
    fastify.post('/claim', async (request) => request.quota)
    const res = await fastify.inject({ method: 'POST', url: '/claim', payload: { user: 'alice' } })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ allowed: true, usage: 1 })
    expect((await quota.get('alice')).usage).toBe(1)
  })

  it('refunds the 404 of an unknown route in its scope', async () => {
    const { quota, compensations } = hourly()
    const fastify = app(make)
    await fastify.register(fastifyQuota, { quota, id: () => 'u' })
    expect((await fastify.inject({ method: 'GET', url: '/nowhere' })).statusCode).toBe(404)
    await vi.waitFor(() => expect(compensations).toEqual([1]))
    expect((await quota.get('u')).usage).toBe(0)
  })

  it("refuses a hook other than 'onRequest' or 'preHandler' when the app starts", async () => {
    const { quota } = hourly()
    const fastify = app(make)
    fastify.register(fastifyQuota, { quota, id: () => 'u', hook: 'onSend' as never })
    await expect(fastify.ready()).rejects.toThrow(/hook/)
  })
})
