import { createMemoryStore } from '@andromeda/memory'
import { hourlyQuota } from '@andromeda/middleware-cases'
import { parseRateLimitItems as parseItems } from '@andromeda/test-utils'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { defaultRefundWhen, honoQuota, type QuotaVariables, type SettleOutcome } from '../src/index.js'

// What only Hono has: app.request() without a server, handlers that return a bare Response,
// per-route middleware and sub-apps. Everything else is in the shared table (test/cases.test.ts).

/** A 3-per-hour (or `limit`) memory quota on a clock held at the window's start, and what it gave back. */
const hourly = (limit = 3) => hourlyQuota(createMemoryStore(), limit)

describe('honoQuota', () => {
  it('works through app.request(): grants with headers, refunds a 500 once before the response is returned', async () => {
    const { quota, compensations } = hourly(2)
    const outcomes: SettleOutcome[] = []
    const app = new Hono<{ Variables: QuotaVariables }>()
    app.use(
      honoQuota({
        quota,
        id: () => 'u',
        refundWhen: (outcome) => {
          outcomes.push(outcome)
          return defaultRefundWhen(outcome)
        },
      }),
    )
    app.get('/ok', (c) => c.json({ remaining: c.get('quota')?.remaining }))
    app.get('/fails', (c) => c.json({ error: 'failed' }, 500))
    const granted = await app.request('/ok')
    expect(granted.status).toBe(200)
    expect(await granted.json()).toEqual({ remaining: 1 })
    expect(granted.headers.get('ratelimit-policy')).toBe('"api";q=2;w=3600')
    const failed = await app.request('/fails')
    expect(failed.status).toBe(500)
    // Settled before the response was returned: no waiting.
    expect(compensations).toEqual([1])
    expect(outcomes).toEqual([
      { status: 200, aborted: false },
      { status: 500, aborted: false },
    ])
    expect((await quota.get('u')).usage).toBe(1)
  })

  it('keeps the RateLimit headers on a bare Response a handler returns', async () => {
    const { quota } = hourly()
    const app = new Hono()
    app.use(honoQuota({ quota, id: () => 'u' }))
    app.get('/raw', () => new Response('raw body', { headers: { 'content-type': 'text/plain' } }))
    const res = await app.request('/raw')
    expect(await res.text()).toBe('raw body')
    expect(res.headers.get('content-type')).toBe('text/plain')
    expect(res.headers.get('ratelimit-policy')).toBe('"api";q=3;w=3600')
  })

  it('guards only the route it is given to, and only the sub-app it is used on', async () => {
    const { quota } = hourly()
    const api = new Hono()
    api.use(honoQuota({ quota, id: () => 'sub' }))
    api.get('/work', (c) => c.text('done'))
    const app = new Hono()
    app.get('/guarded', honoQuota({ quota, id: () => 'route' }), (c) => c.text('ok'))
    app.get('/open', (c) => c.text('ok'))
    app.route('/api', api)
    const ratelimit = async (path: string) =>
      parseItems((await app.request(path)).headers.get('ratelimit') ?? undefined)
    expect((await ratelimit('/guarded')).api?.r).toBe(2)
    expect(await ratelimit('/open')).toEqual({})
    expect((await ratelimit('/api/work')).api?.r).toBe(2)
    expect((await quota.get('route')).usage).toBe(1)
    expect((await quota.get('sub')).usage).toBe(1)
  })
})
