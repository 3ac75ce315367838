import { createQuota, type QuotaResult } from '@andromeda/core'
import { createMemoryStore } from '@andromeda/memory'
import express, { type ErrorRequestHandler } from 'express'
import express4 from 'express4'
import request from 'supertest'
import { describe, expect, it, vi } from 'vitest'
import { defaultRefundWhen, expressQuota, type SettleOutcome } from '../src/index.js'
import { downStore, hangingStore, parseRateLimitItems as parseItems } from '@andromeda/test-utils'

type ExpressFactory = typeof express

/** A quota of 3 per hour and an app whose routes misbehave on demand. */
function setup(make: ExpressFactory = express, extra: Partial<Parameters<typeof expressQuota>[0]> = {}) {
  const compensations: number[] = []
  const outcomes: SettleOutcome[] = []
  const quota = createQuota({
    name: 'api',
    store: createMemoryStore(),
    limit: 3,
    period: 'hour',
    hooks: { onCompensate: (event) => void compensations.push(event.cost) },
  })
  const errors: unknown[] = []
  const app = make()
  app.use(
    expressQuota({
      quota,
      id: (req) => req.get('x-user') ?? 'anonymous',
      refundWhen: (outcome) => {
        outcomes.push(outcome)
        return defaultRefundWhen(outcome)
      },
      ...extra,
    }),
  )
  app.get('/ok', (_req, res) => {
    res.json({ remaining: (res.locals.quota as QuotaResult).remaining })
  })
  app.get('/throws', () => {
    throw new Error('boom')
  })
  app.get('/answers-500', (_req, res) => {
    res.status(500).json({ error: 'failed' })
  })
  app.get('/forwards', (_req, _res, next) => {
    next(new Error('forwarded'))
  })
  app.get('/sends-then-throws', (_req, res) => {
    res.json({ ok: true })
    throw new Error('late')
  })
  const onError: ErrorRequestHandler = (error, _req, res, next) => {
    errors.push(error)
    // A well-behaved error handler: only answer when nothing was sent yet.
    if (res.headersSent) return next(error)
    res.status(500).json({ error: String(error.message) })
  }
  app.use(onError)
  return { app, quota, compensations, outcomes, errors }
}

/** Wait until the middleware settled `count` responses (Express settles when they finish). */
async function settled(outcomes: SettleOutcome[], count: number) {
  await vi.waitFor(() => expect(outcomes.length).toBeGreaterThanOrEqual(count))
  // Let any duplicate 'finish' / 'close' settlement show itself before counting.
  await new Promise((resolve) => setImmediate(resolve))
}

describe.each([
  ['Express 5', express],
  ['Express 4', express4 as ExpressFactory],
])('expressQuota on %s', (_name, make) => {
  it('grants 3 requests with falling RateLimit remaining, then answers 429 problem+json with Retry-After', async () => {
    const { app } = setup(make)
    const remaining: number[] = []
    for (let i = 0; i < 3; i++) {
      const res = await request(app).get('/ok').expect(200)
      expect(res.headers['ratelimit-policy']).toBe('"api";q=3;w=3600')
      const item = parseItems(res.headers.ratelimit).api!
      remaining.push(item.r!)
      expect(item.t).toBeGreaterThanOrEqual(1)
      expect(item.t).toBeLessThanOrEqual(3600)
      expect(res.body.remaining).toBe(item.r)
    }
    expect(remaining).toEqual([2, 1, 0])

    const refused = await request(app).get('/ok').expect(429)
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
    expect(JSON.parse(refused.text).detail).toEqual(expect.any(String))
  })

  it('refunds a handler that throws exactly once', async () => {
    const { app, quota, compensations, outcomes } = setup(make)
    await request(app).get('/throws').expect(500)
    await settled(outcomes, 1)
    await vi.waitFor(() => expect(compensations).toEqual([1]))
    expect(outcomes).toHaveLength(1)
    expect((await quota.get('anonymous')).usage).toBe(0)
  })

  it('refunds a handler that answers 500 exactly once', async () => {
    const { app, quota, compensations, outcomes } = setup(make)
    await request(app).get('/answers-500').expect(500)
    await settled(outcomes, 1)
    await vi.waitFor(() => expect(compensations).toEqual([1]))
    expect(outcomes).toEqual([{ status: 500, aborted: false }])
    expect((await quota.get('anonymous')).usage).toBe(0)
  })

  it('refunds a handler that forwards an error with next(err)', async () => {
    const { app, quota, compensations, outcomes } = setup(make)
    await request(app).get('/forwards').expect(500)
    await settled(outcomes, 1)
    await vi.waitFor(() => expect(compensations).toEqual([1]))
    expect((await quota.get('anonymous')).usage).toBe(0)
  })

  it('does not refund a 200', async () => {
    const { app, quota, compensations, outcomes } = setup(make)
    await request(app).get('/ok').expect(200)
    await settled(outcomes, 1)
    expect(outcomes).toEqual([{ status: 200, aborted: false }])
    expect(compensations).toEqual([])
    expect((await quota.get('anonymous')).usage).toBe(1)
  })

  it('a handler that sends and then throws yields one response and no ERR_HTTP_HEADERS_SENT', async () => {
    const { app, errors, outcomes } = setup(make)
    const res = await request(app).get('/sends-then-throws')
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ ok: true })
    await settled(outcomes, 1)
    expect(outcomes).toHaveLength(1)
    expect(errors.map((e) => (e as Error).message)).toEqual(['late'])
    expect(errors.some((e) => (e as { code?: string }).code === 'ERR_HTTP_HEADERS_SENT')).toBe(false)
  })
})

describe('expressQuota', () => {
  it("answers 503 problem+json, never 429, when the store is down and onStoreError is 'deny'", async () => {
    const quota = createQuota({ name: 'api', store: downStore(), limit: 3 })
    const app = express()
    app.use(expressQuota({ quota, id: () => 'u' }))
    app.get('/', (_req, res) => {
      res.send('served')
    })
    const started = Date.now()
    const res = await request(app).get('/').expect(503)
    expect(Date.now() - started).toBeLessThan(1000)
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/)
    expect(JSON.parse(res.text)).toMatchObject({ status: 503, title: 'Service Unavailable' })
    expect(res.headers.ratelimit).toBeUndefined()
  })

  it("passes uncounted when the store is down and onStoreError is 'allow'", async () => {
    const quota = createQuota({ name: 'api', store: downStore(), limit: 3 })
    const app = express()
    app.use(expressQuota({ quota, id: () => 'u', onStoreError: 'allow' }))
    app.get('/', (_req, res) => {
      res.json(res.locals.quota)
    })
    const res = await request(app).get('/').expect(200)
    expect(res.body).toMatchObject({ allowed: true, degraded: true })
    expect(res.headers.ratelimit).toBeUndefined()
  })

  it("follows the quota's own onStoreError 'deny' with a 503", async () => {
    const quota = createQuota({ name: 'api', store: downStore(), limit: 3, onStoreError: 'deny' })
    const app = express()
    app.use(expressQuota({ quota, id: () => 'u', onStoreError: 'allow' }))
    app.get('/', (_req, res) => {
      res.send('served')
    })
    await request(app).get('/').expect(503)
  })

  it('answers 503 within timeoutMs when the store never answers', async () => {
    const quota = createQuota({ name: 'api', store: hangingStore(), limit: 3 })
    const app = express()
    app.use(expressQuota({ quota, id: () => 'u', timeoutMs: 200 }))
    app.get('/', (_req, res) => {
      res.send('served')
    })
    const started = Date.now()
    await request(app).get('/').expect(503)
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('does not refund a request whose client went away while the handler succeeded', async () => {
    const quota = createQuota({ name: 'api', store: createMemoryStore(), limit: 3 })
    const outcomes: SettleOutcome[] = []
    const app = express()
    app.use(
      expressQuota({
        quota,
        id: () => 'u',
        refundWhen: (o) => {
          outcomes.push(o)
          return defaultRefundWhen(o)
        },
      }),
    )
    let finished: () => void = () => {}
    const handlerDone = new Promise<void>((resolve) => {
      finished = resolve
    })
    app.get('/slow', (_req, res) => {
      setTimeout(() => {
        res.json({ done: true })
        finished()
      }, 300)
    })
    await expect(request(app).get('/slow').timeout(50)).rejects.toThrow(/Timeout/)
    await handlerDone
    await settled(outcomes, 1)
    expect(outcomes).toEqual([{ status: 200, aborted: true }])
    expect((await quota.get('u')).usage).toBe(1)
  })

  it('charges the same Idempotency-Key once', async () => {
    const quota = createQuota({ name: 'api', store: createMemoryStore(), limit: 3 })
    const app = express()
    app.use(expressQuota({ quota, id: () => 'u', idempotency: true }))
    app.post('/claim', (_req, res) => {
      res.json(res.locals.quota)
    })
    const first = await request(app).post('/claim').set('Idempotency-Key', 'order-1').expect(200)
    const second = await request(app).post('/claim').set('Idempotency-Key', 'order-1').expect(200)
    expect(first.body.replayed).toBeUndefined()
    expect(second.body.replayed).toBe(true)
    expect((await quota.get('u')).usage).toBe(1)
    await request(app).post('/claim').set('Idempotency-Key', 'order-2').expect(200)
    expect((await quota.get('u')).usage).toBe(2)
  })

  it('charges a retry afresh when the first attempt with that Idempotency-Key was refunded', async () => {
    const quota = createQuota({ name: 'api', store: createMemoryStore(), limit: 3 })
    const outcomes: SettleOutcome[] = []
    let fail = true
    const app = express()
    app.use(
      expressQuota({
        quota,
        id: () => 'u',
        idempotency: true,
        refundWhen: (o) => {
          outcomes.push(o)
          return defaultRefundWhen(o)
        },
      }),
    )
    app.post('/claim', (_req, res) => {
      res.status(fail ? 500 : 200).json(res.locals.quota)
    })
    await request(app).post('/claim').set('Idempotency-Key', 'k').expect(500)
    await settled(outcomes, 1)
    await vi.waitFor(async () => expect((await quota.get('u')).usage).toBe(0))
    fail = false
    const retry = await request(app).post('/claim').set('Idempotency-Key', 'k').expect(200)
    expect(retry.body.replayed).toBeUndefined()
    expect((await quota.get('u')).usage).toBe(1)
  })

  it('honours cost from a function, skip and a custom id', async () => {
    const quota = createQuota({ name: 'api', store: createMemoryStore(), limit: 10 })
    const app = express()
    app.use(
      expressQuota({
        quota,
        id: (req) => req.get('x-user') ?? 'anonymous',
        cost: (req) => Number(req.query.units ?? 1),
        skip: (req) => req.path === '/health',
      }),
    )
    app.get('/health', (_req, res) => {
      res.send('up')
    })
    app.get('/work', (_req, res) => {
      res.send('done')
    })
    const res = await request(app).get('/work?units=4').set('x-user', 'alice').expect(200)
    expect(parseItems(res.headers.ratelimit).api).toEqual({ r: 6 })
    await request(app).get('/work').set('x-user', 'bob').expect(200)
    const skipped = await request(app).get('/health').set('x-user', 'alice').expect(200)
    expect(skipped.headers.ratelimit).toBeUndefined()
    expect((await quota.get('alice')).usage).toBe(4)
    expect((await quota.get('bob')).usage).toBe(1)
    await request(app).get('/work?units=7').set('x-user', 'alice').expect(429)
    expect((await quota.get('alice')).usage).toBe(4)
  })

  it('resolves quota, id and cost per request, and skips when the resolver returns nothing', async () => {
    const reads = createQuota({ name: 'reads', store: createMemoryStore(), limit: 5 })
    const writes = createQuota({ name: 'writes', store: createMemoryStore(), limit: 5 })
    const app = express()
    app.use(
      expressQuota({
        quota: (req) =>
          req.path === '/free' ? undefined : req.method === 'GET' ? { quota: reads, id: 'u' } : { quota: writes, id: 'u', cost: 2 },
      }),
    )
    app.all('/{*any}', (_req, res) => {
      res.send('ok')
    })
    await request(app).get('/a').expect(200)
    await request(app).post('/a').expect(200)
    const free = await request(app).get('/free').expect(200)
    expect(free.headers.ratelimit).toBeUndefined()
    expect((await reads.get('u')).usage).toBe(1)
    expect((await writes.get('u')).usage).toBe(2)
  })

  it('lists two stacked quotas together in RateLimit and RateLimit-Policy', async () => {
    const perUser = createQuota({ name: 'user', store: createMemoryStore(), limit: 5, period: 'minute' })
    const global = createQuota({ name: 'global', store: createMemoryStore(), limit: 100 })
    const app = express()
    app.use(expressQuota({ quota: perUser, id: () => 'u' }), expressQuota({ quota: global, id: () => 'all' }))
    app.get('/', (_req, res) => {
      res.send('ok')
    })
    const res = await request(app).get('/').expect(200)
    expect(res.headers['ratelimit-policy']).toBe('"user";q=5;w=60, "global";q=100')
    const items = parseItems(res.headers.ratelimit)
    expect(items.user!.r).toBe(4)
    expect(items.global).toEqual({ r: 99 })
  })

  it('writes legacy X-RateLimit-* fields when asked, and none with headers: false', async () => {
    const quota = createQuota({ name: 'api', store: createMemoryStore(), limit: 3, period: 'day' })
    const app = express()
    app.get('/legacy', expressQuota({ quota, id: () => 'a', headers: { legacy: 'x-ratelimit' } }), (_req, res) => {
      res.send('ok')
    })
    app.get('/none', expressQuota({ quota, id: () => 'b', headers: false }), (_req, res) => {
      res.send('ok')
    })
    const legacy = await request(app).get('/legacy').expect(200)
    expect(legacy.headers['x-ratelimit-limit']).toBe('3')
    expect(legacy.headers['x-ratelimit-remaining']).toBe('2')
    expect(Number(legacy.headers['x-ratelimit-reset'])).toBeGreaterThan(Date.now() / 1000)
    expect(legacy.headers.ratelimit).toBeDefined()
    const none = await request(app).get('/none').expect(200)
    expect(none.headers.ratelimit).toBeUndefined()
    expect(none.headers['ratelimit-policy']).toBeUndefined()
  })

  it('lets onExceeded answer the 429 itself, with the headers already set', async () => {
    const quota = createQuota({ name: 'api', store: createMemoryStore(), limit: 1, period: 'minute' })
    const app = express()
    app.use(
      expressQuota({
        quota,
        id: () => 'u',
        onExceeded: (_req, res, refusal) => {
          res.json({ message: 'slow down', remaining: refusal.result.remaining })
        },
      }),
    )
    app.get('/', (_req, res) => {
      res.send('ok')
    })
    await request(app).get('/').expect(200)
    const res = await request(app).get('/').expect(429)
    expect(res.body).toEqual({ message: 'slow down', remaining: 0 })
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1)
  })

  it('forwards an id function that throws to the error handler and charges nothing', async () => {
    const quota = createQuota({ name: 'api', store: createMemoryStore(), limit: 3 })
    const app = express()
    app.use(
      expressQuota({
        quota,
        id: () => {
          throw new Error('no user')
        },
      }),
    )
    app.get('/', (_req, res) => {
      res.send('ok')
    })
    app.use(((error, _req, res, _next) => {
      res.status(401).send(error.message)
    }) as ErrorRequestHandler)
    const res = await request(app).get('/').expect(401)
    expect(res.text).toBe('no user')
  })

  it('rejects invalid options when the middleware is created', () => {
    const quota = createQuota({ name: 'api', store: createMemoryStore(), limit: 3 })
    expect(() => expressQuota({ quota } as never)).toThrow(/id/)
    expect(() => expressQuota({ quota, id: () => 'u', cost: -1 })).toThrow(/cost/)
    expect(() => expressQuota({ quota, id: () => 'u', timeoutMs: 0 })).toThrow(/timeoutMs/)
  })
})
