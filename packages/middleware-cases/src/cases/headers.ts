import { createQuota } from '@andromeda/core'
import { parseRateLimitItems as parseItems } from '@andromeda/test-utils'
import { expect, vi } from 'vitest'
import type { MiddlewareCase } from '../case.js'
import { call } from '../http.js'
import { byUser, hourlyQuota, PROBLEM_JSON, QUOTA_EXCEEDED, windowQuota } from './helpers.js'

/** What a granted or refused request is told: the RateLimit fields (and the legacy ones), the 429 problem+json and its Retry-After, read off the quota's own clock. */
export const HEADER_CASES: MiddlewareCase[] = [
  {
    name: 'grants 3 requests with falling RateLimit remaining, then answers 429 problem+json with Retry-After',
    async run({ req, store, serve }) {
      const { quota } = hourlyQuota(store())
      const app = await serve([{ quota, id: byUser(req) }])
      const remaining: number[] = []
      for (let i = 0; i < 3; i++) {
        const res = await call(`${app.url}/ok`)
        expect(res.status).toBe(200)
        expect(res.headers.get('ratelimit-policy')).toBe('"api";q=3;w=3600')
        const item = parseItems(res.headers.get('ratelimit') ?? undefined).api!
        remaining.push(item.r!)
        expect(item.t).toBeGreaterThanOrEqual(1)
        expect(item.t).toBeLessThanOrEqual(3600)
        expect(res.json().remaining).toBe(item.r)
      }
      expect(remaining).toEqual([2, 1, 0])

      const refused = await call(`${app.url}/ok`)
      expect(refused.status).toBe(429)
      expect(refused.headers.get('content-type')).toMatch(PROBLEM_JSON)
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/)
      const retryAfter = Number(refused.headers.get('retry-after'))
      expect(retryAfter).toBeGreaterThanOrEqual(1)
      expect(retryAfter).toBeLessThanOrEqual(3600)
      expect(refused.headers.get('ratelimit-policy')).toBe('"api";q=3;w=3600')
      expect(parseItems(refused.headers.get('ratelimit') ?? undefined).api).toEqual({ r: 0, t: retryAfter })
      expect(refused.json()).toMatchObject({
        type: QUOTA_EXCEEDED,
        title: 'Quota exceeded',
        status: 429,
        'violated-policies': ['api'],
        limit: 3,
        remaining: 0,
        'retry-after': retryAfter,
      })
      expect(refused.json().detail).toEqual(expect.any(String))
      expect((await quota.get('anonymous')).usage).toBe(3)
    },
  },
  {
    name: 'lists two stacked quotas together, and a failed request keeps both and is refunded by both',
    async run({ store, serve }) {
      const perUser = windowQuota(store(), { name: 'user', limit: 5, period: 'minute' })
      const global = createQuota({ name: 'global', store: store(), limit: 100 })
      const app = await serve([
        { quota: perUser, id: () => 'u' },
        { quota: global, id: () => 'all' },
      ])
      const res = await call(`${app.url}/ok`)
      expect(res.status).toBe(200)
      expect(res.headers.get('ratelimit-policy')).toBe('"user";q=5;w=60, "global";q=100')
      const items = parseItems(res.headers.get('ratelimit') ?? undefined)
      expect(items.user!.r).toBe(4)
      expect(items.global).toEqual({ r: 99 })
      const failed = await call(`${app.url}/teapot`)
      expect(failed.status).toBe(418)
      expect(failed.headers.get('ratelimit-policy')).toBe('"user";q=5;w=60, "global";q=100')
      await vi.waitFor(async () => {
        expect((await perUser.get('u')).usage).toBe(1)
        expect((await global.get('all')).usage).toBe(1)
      })
    },
  },
  {
    name: 'writes legacy X-RateLimit-* fields when asked, and none with headers: false',
    async run({ store, serve }) {
      const quota = windowQuota(store(), { limit: 3, period: 'day' })
      const legacyApp = await serve([{ quota, id: () => 'a', headers: { legacy: 'x-ratelimit' } }])
      const legacy = await call(`${legacyApp.url}/ok`)
      expect(legacy.headers.get('x-ratelimit-limit')).toBe('3')
      expect(legacy.headers.get('x-ratelimit-remaining')).toBe('2')
      expect(Number(legacy.headers.get('x-ratelimit-reset'))).toBeGreaterThan(Date.now() / 1000)
      expect(legacy.headers.get('ratelimit')).not.toBeNull()
      const noneApp = await serve([{ quota, id: () => 'b', headers: false }])
      const none = await call(`${noneApp.url}/ok`)
      expect(none.status).toBe(200)
      expect(none.headers.get('ratelimit')).toBeNull()
      expect(none.headers.get('ratelimit-policy')).toBeNull()
    },
  },
  {
    name: 'lets onExceeded answer the 429 itself, with the headers already set',
    async run({ store, serve }) {
      const quota = windowQuota(store(), { limit: 1, period: 'minute' })
      const app = await serve([
        {
          quota,
          id: () => 'u',
          refusalBody: (refusal) => ({
            message: 'slow down',
            remaining: refusal.result.remaining,
            retryAfter: refusal.retryAfterSeconds,
          }),
        },
      ])
      expect((await call(`${app.url}/ok`)).status).toBe(200)
      const res = await call(`${app.url}/ok`)
      expect(res.status).toBe(429)
      expect(res.json()).toEqual({
        message: 'slow down',
        remaining: 0,
        retryAfter: Number(res.headers.get('retry-after')),
      })
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(parseItems(res.headers.get('ratelimit') ?? undefined).api!.r).toBe(0)
    },
  },
  {
    name: 'an onExceeded that throws is a server error: 500 (never the 429), the RateLimit headers kept',
    async run({ store, serve }) {
      const quota = windowQuota(store(), { limit: 1, period: 'minute' })
      const refusalBody = () => {
        throw new Error('the custom 429 body failed')
      }
      const app = await serve([{ quota, id: () => 'u', refusalBody }])
      expect((await call(`${app.url}/ok`)).status).toBe(200)
      const res = await call(`${app.url}/ok`)
      expect(res.status).toBe(500)
      expect(parseItems(res.headers.get('ratelimit') ?? undefined).api!.r).toBe(0)
    },
  },
  {
    name: "Retry-After and the RateLimit reset come from the quota's clock, 2 minutes behind or ahead of real time",
    async run({ store, serve }) {
      for (const offsetMs of [-120_000, 120_000]) {
        const quota = createQuota({
          name: 'api',
          store: store(),
          limit: 1,
          period: 'minute',
          clock: () => Date.now() + offsetMs,
        })
        const app = await serve([{ quota, id: () => `u${offsetMs}` }])
        expect((await call(`${app.url}/ok`)).status).toBe(200)
        const refused = await call(`${app.url}/ok`)
        expect(refused.status).toBe(429)
        const retryAfter = Number(refused.headers.get('retry-after'))
        expect(retryAfter).toBeGreaterThanOrEqual(1)
        expect(retryAfter).toBeLessThanOrEqual(60)
        const item = parseItems(refused.headers.get('ratelimit') ?? undefined).api!
        expect(item.t).toBeGreaterThanOrEqual(1)
        expect(item.t).toBeLessThanOrEqual(60)
      }
    },
  },
]
