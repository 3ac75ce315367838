import type { Server } from 'node:http'
import { createQuota, type QuotaResult } from '@andromeda/core'
import { createMemoryStore } from '@andromeda/memory'
import Router from '@koa/router'
import Koa from 'koa'
import Koa2 from 'koa2'
import request from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'
import { defaultRefundWhen, koaQuota, type SettleOutcome } from '../src/index.js'
import { downStore, hangingStore, parseRateLimitItems as parseItems } from '@andromeda/test-utils'

type KoaClass = typeof Koa

const servers: Server[] = []
afterEach(() => {
  for (const server of servers.splice(0)) server.close()
})

/** Koa apps are served on a listening server (no custom error handling: Koa's default). */
function serve(app: Koa): Server {
  app.silent = true
  const server = app.listen(0)
  servers.push(server)
  return server
}

/** A quota of 3 per hour and an app whose routes misbehave on demand. */
function setup(KoaApp: KoaClass = Koa) {
  const compensations: number[] = []
  const outcomes: SettleOutcome[] = []
  const appErrors: unknown[] = []
  const quota = createQuota({
    name: 'api',
    store: createMemoryStore(),
    limit: 3,
    period: 'hour',
    hooks: { onCompensate: (event) => void compensations.push(event.cost) },
  })
  const app = new KoaApp()
  app.on('error', (error) => appErrors.push(error))
  app.use(
    koaQuota({
      quota,
      id: (ctx) => ctx.get('x-user') || 'anonymous',
      refundWhen: (outcome) => {
        outcomes.push(outcome)
        return defaultRefundWhen(outcome)
      },
    }),
  )
  const router = new Router()
  router.get('/ok', (ctx) => {
    ctx.body = { remaining: (ctx.state.quota as QuotaResult).remaining }
  })
  router.get('/throws', () => {
    throw new Error('boom')
  })
  router.get('/answers-500', (ctx) => {
    ctx.status = 500
    ctx.body = { error: 'failed' }
  })
  router.get('/sends-then-throws', (ctx) => {
    ctx.respond = false
    ctx.res.writeHead(200, { 'content-type': 'application/json' })
    ctx.res.end('{"ok":true}')
    throw new Error('late')
  })
  app.use(router.routes())
  return { server: serve(app), quota, compensations, outcomes, appErrors }
}

describe.each([
  ['Koa 3', Koa],
  ['Koa 2', Koa2 as KoaClass],
])('koaQuota on %s', (_name, KoaApp) => {
  it('grants 3 requests with falling RateLimit remaining, then answers 429 problem+json with Retry-After', async () => {
    const { server } = setup(KoaApp)
    const remaining: number[] = []
    for (let i = 0; i < 3; i++) {
      const res = await request(server).get('/ok').expect(200)
      expect(res.headers['ratelimit-policy']).toBe('"api";q=3;w=3600')
      const item = parseItems(res.headers.ratelimit).api!
      remaining.push(item.r!)
      expect(item.t).toBeGreaterThanOrEqual(1)
      expect(res.body.remaining).toBe(item.r)
    }
    expect(remaining).toEqual([2, 1, 0])

    // Koa's default error handling is in place (no custom handler): the 429 keeps its headers.
    const refused = await request(server).get('/ok').expect(429)
    expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(refused.headers['retry-after']).toMatch(/^\d+$/)
    const retryAfter = Number(refused.headers['retry-after'])
    expect(retryAfter).toBeGreaterThanOrEqual(1)
    expect(retryAfter).toBeLessThanOrEqual(3600)
    expect(refused.headers['ratelimit-policy']).toBe('"api";q=3;w=3600')
    expect(parseItems(refused.headers.ratelimit).api).toEqual({ r: 0, t: retryAfter })
    expect(JSON.parse(refused.text)).toMatchObject({
      type: 'https://iana.org/assignments/http-problem-types#quota-exceeded',
      title: 'Quota exceeded',
      status: 429,
      'violated-policies': ['api'],
      limit: 3,
      remaining: 0,
    })
  })

  it('refunds a handler that throws exactly once, and its 500 keeps the RateLimit headers', async () => {
    const { server, quota, compensations, outcomes } = setup(KoaApp)
    const res = await request(server).get('/throws').expect(500)
    expect(parseItems(res.headers.ratelimit).api!.r).toBe(2)
    expect(res.headers['ratelimit-policy']).toBe('"api";q=3;w=3600')
    // Koa settles before the response is written: no waiting needed.
    expect(compensations).toEqual([1])
    expect(outcomes).toHaveLength(1)
    expect(outcomes[0]).toMatchObject({ status: 500, aborted: false })
    expect((outcomes[0]!.error as Error).message).toBe('boom')
    expect((await quota.get('anonymous')).usage).toBe(0)
  })

  it('refunds a handler that answers 500 exactly once', async () => {
    const { server, quota, compensations, outcomes } = setup(KoaApp)
    await request(server).get('/answers-500').expect(500)
    expect(compensations).toEqual([1])
    expect(outcomes).toEqual([{ status: 500, aborted: false }])
    expect((await quota.get('anonymous')).usage).toBe(0)
  })

  it('does not refund a 200', async () => {
    const { server, quota, compensations, outcomes } = setup(KoaApp)
    await request(server).get('/ok').expect(200)
    expect(outcomes).toEqual([{ status: 200, aborted: false }])
    expect(compensations).toEqual([])
    expect((await quota.get('anonymous')).usage).toBe(1)
  })

  it('a handler that sends and then throws yields one response and no ERR_HTTP_HEADERS_SENT', async () => {
    const { server, appErrors, outcomes } = setup(KoaApp)
    const res = await request(server).get('/sends-then-throws')
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ ok: true })
    expect(outcomes).toHaveLength(1)
    expect(appErrors.map((e) => (e as Error).message)).toEqual(['late'])
    expect(appErrors.some((e) => (e as { code?: string }).code === 'ERR_HTTP_HEADERS_SENT')).toBe(false)
  })
})

describe('koaQuota', () => {
  it("answers 503 problem+json, never 429, when the store is down and onStoreError is 'deny'", async () => {
    const quota = createQuota({ name: 'api', store: downStore(), limit: 3 })
    const app = new Koa()
    app.use(koaQuota({ quota, id: () => 'u' }))
    app.use((ctx) => {
      ctx.body = 'served'
    })
    const started = Date.now()
    const res = await request(serve(app)).get('/').expect(503)
    expect(Date.now() - started).toBeLessThan(1000)
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(JSON.parse(res.text)).toMatchObject({ status: 503, title: 'Service Unavailable' })
    expect(res.headers.ratelimit).toBeUndefined()
  })

  it("passes uncounted when the store is down and onStoreError is 'allow'", async () => {
    const quota = createQuota({ name: 'api', store: downStore(), limit: 3 })
    const app = new Koa()
    app.use(koaQuota({ quota, id: () => 'u', onStoreError: 'allow' }))
    app.use((ctx) => {
      ctx.body = ctx.state.quota
    })
    const res = await request(serve(app)).get('/').expect(200)
    expect(res.body).toMatchObject({ allowed: true, degraded: true })
  })

  it('answers 503 within timeoutMs when the store never answers', async () => {
    const quota = createQuota({ name: 'api', store: hangingStore(), limit: 3 })
    const app = new Koa()
    app.use(koaQuota({ quota, id: () => 'u', timeoutMs: 200 }))
    app.use((ctx) => {
      ctx.body = 'served'
    })
    const started = Date.now()
    await request(serve(app)).get('/').expect(503)
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('does not refund a request whose client went away while the handler succeeded', async () => {
    const quota = createQuota({ name: 'api', store: createMemoryStore(), limit: 3 })
    const outcomes: SettleOutcome[] = []
    let settledOnce: () => void = () => {}
    const settledPromise = new Promise<void>((resolve) => {
      settledOnce = resolve
    })
    const app = new Koa()
    app.use(
      koaQuota({
        quota,
        id: () => 'u',
        refundWhen: (o) => {
          outcomes.push(o)
          settledOnce()
          return defaultRefundWhen(o)
        },
      }),
    )
    app.use(async (ctx) => {
      await new Promise((resolve) => setTimeout(resolve, 300))
      ctx.body = { done: true }
    })
    await expect(request(serve(app)).get('/slow').timeout(50)).rejects.toThrow(/Timeout/)
    await settledPromise
    expect(outcomes).toEqual([{ status: 200, aborted: true }])
    expect((await quota.get('u')).usage).toBe(1)
  })

  it('charges the same Idempotency-Key once', async () => {
    const quota = createQuota({ name: 'api', store: createMemoryStore(), limit: 3 })
    const app = new Koa()
    app.use(koaQuota({ quota, id: () => 'u', idempotency: true }))
    app.use((ctx) => {
      ctx.body = ctx.state.quota
    })
    const server = serve(app)
    await request(server).post('/claim').set('Idempotency-Key', '"order-1"').expect(200)
    const second = await request(server).post('/claim').set('Idempotency-Key', '"order-1"').expect(200)
    expect(second.body.replayed).toBe(true)
    expect((await quota.get('u')).usage).toBe(1)
    await request(server).post('/claim').set('Idempotency-Key', 'order-2').expect(200)
    expect((await quota.get('u')).usage).toBe(2)
    const tooLong = await request(server).post('/claim').set('Idempotency-Key', 'x'.repeat(1025)).expect(400)
    expect(tooLong.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect((await quota.get('u')).usage).toBe(2)
  })

  it('honours cost from a function, skip and a custom id', async () => {
    const quota = createQuota({ name: 'api', store: createMemoryStore(), limit: 10 })
    const app = new Koa()
    app.use(
      koaQuota({
        quota,
        id: (ctx) => ctx.get('x-user') || 'anonymous',
        cost: (ctx) => Number(ctx.query.units ?? 1),
        skip: (ctx) => ctx.path === '/health',
      }),
    )
    app.use((ctx) => {
      ctx.body = 'ok'
    })
    const server = serve(app)
    const res = await request(server).get('/work?units=4').set('x-user', 'alice').expect(200)
    expect(parseItems(res.headers.ratelimit).api).toEqual({ r: 6 })
    await request(server).get('/work').set('x-user', 'bob').expect(200)
    const skipped = await request(server).get('/health').set('x-user', 'alice').expect(200)
    expect(skipped.headers.ratelimit).toBeUndefined()
    expect((await quota.get('alice')).usage).toBe(4)
    expect((await quota.get('bob')).usage).toBe(1)
    await request(server).get('/work?units=7').set('x-user', 'alice').expect(429)
    expect((await quota.get('alice')).usage).toBe(4)
  })

  it('lists two stacked quotas together, and a thrown error keeps both', async () => {
    const perUser = createQuota({ name: 'user', store: createMemoryStore(), limit: 5, period: 'minute' })
    const global = createQuota({ name: 'global', store: createMemoryStore(), limit: 100 })
    const app = new Koa()
    app.silent = true
    app.use(koaQuota({ quota: perUser, id: () => 'u' }))
    app.use(koaQuota({ quota: global, id: () => 'all' }))
    app.use((ctx) => {
      if (ctx.path === '/fail') ctx.throw(418, 'teapot')
      ctx.body = 'ok'
    })
    const server = serve(app)
    const res = await request(server).get('/').expect(200)
    expect(res.headers['ratelimit-policy']).toBe('"user";q=5;w=60, "global";q=100')
    expect(parseItems(res.headers.ratelimit).global).toEqual({ r: 99 })
    const failed = await request(server).get('/fail').expect(418)
    expect(failed.headers['ratelimit-policy']).toBe('"user";q=5;w=60, "global";q=100')
    // The failed request was refunded by both middlewares before the response went out.
    expect((await perUser.get('u')).usage).toBe(1)
    expect((await global.get('all')).usage).toBe(1)
  })

  it('lets onExceeded set its own body on the 429', async () => {
    const quota = createQuota({ name: 'api', store: createMemoryStore(), limit: 1, period: 'minute' })
    const app = new Koa()
    app.use(
      koaQuota({
        quota,
        id: () => 'u',
        onExceeded: (ctx, refusal) => {
          ctx.body = { message: 'slow down', retryAfter: refusal.retryAfterSeconds }
        },
      }),
    )
    app.use((ctx) => {
      ctx.body = 'ok'
    })
    const server = serve(app)
    await request(server).get('/').expect(200)
    const res = await request(server).get('/').expect(429)
    expect(res.body.message).toBe('slow down')
    expect(res.body.retryAfter).toBe(Number(res.headers['retry-after']))
  })
})
