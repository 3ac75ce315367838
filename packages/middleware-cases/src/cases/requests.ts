import { createQuota } from '@andromeda/core'
import { parseRateLimitItems as parseItems } from '@andromeda/test-utils'
import { expect } from 'vitest'
import type { MiddlewareCase } from '../case.js'
import { call } from '../http.js'
import { apiQuota, byUser } from './helpers.js'

/** Id functions that fail a request (a 500 from the framework's error handling) before anything is counted. */
const FAILING_IDS: { name: string; id: () => unknown }[] = [
  {
    name: "hands an id function that throws to the framework's error handling and charges nothing",
    id: () => {
      throw new Error('no user')
    },
  },
  { name: 'an id function that answers a number fails the request and counts nothing', id: () => 42 },
]

/** What a request counts against: the id, cost, skip and quota resolvers, and what happens when one of them throws or answers the wrong type. */
export const REQUEST_CASES: MiddlewareCase[] = [
  {
    name: 'honours cost from a function, skip and a custom id',
    async run({ req, store, serve }) {
      const quota = apiQuota(store(), 10)
      const app = await serve([
        {
          quota,
          id: byUser(req),
          cost: (r) => Number(req.query(r, 'units') ?? 1),
          skip: (r) => req.path(r) === '/health',
        },
      ])
      const work = await call(`${app.url}/work?units=4`, { headers: { 'x-user': 'alice' } })
      expect(work.status).toBe(200)
      expect(parseItems(work.headers.get('ratelimit') ?? undefined).api).toEqual({ r: 6 })
      expect((await call(`${app.url}/work`, { headers: { 'x-user': 'bob' } })).status).toBe(200)
      const skipped = await call(`${app.url}/health`, { headers: { 'x-user': 'alice' } })
      expect(skipped.status).toBe(200)
      expect(skipped.headers.get('ratelimit')).toBeNull()
      expect((await quota.get('alice')).usage).toBe(4)
      expect((await quota.get('bob')).usage).toBe(1)
      expect((await call(`${app.url}/work?units=7`, { headers: { 'x-user': 'alice' } })).status).toBe(429)
      expect((await quota.get('alice')).usage).toBe(4)
    },
  },
  {
    name: 'resolves quota, id and cost per request, and skips when the resolver returns nothing',
    async run({ req, store, serve }) {
      const reads = createQuota({ name: 'reads', store: store(), limit: 5 })
      const writes = createQuota({ name: 'writes', store: store(), limit: 5 })
      const app = await serve([
        {
          quota: (r) =>
            req.path(r) === '/free'
              ? undefined
              : req.method(r) === 'GET'
                ? { quota: reads, id: 'u' }
                : { quota: writes, id: 'u', cost: 2 },
        },
      ])
      expect((await call(`${app.url}/a`)).status).toBe(200)
      expect((await call(`${app.url}/a`, { method: 'POST' })).status).toBe(200)
      const free = await call(`${app.url}/free`)
      expect(free.status).toBe(200)
      expect(free.headers.get('ratelimit')).toBeNull()
      expect((await reads.get('u')).usage).toBe(1)
      expect((await writes.get('u')).usage).toBe(2)
    },
  },
  {
    name: 'an async skip is awaited; a skip that answers a string fails the request and counts nothing',
    async run({ store, serve }) {
      const quota = apiQuota(store())
      const counted = await serve([{ quota, id: () => 'u', skip: async () => false }])
      expect((await call(`${counted.url}/ok`)).status).toBe(200)
      expect((await quota.get('u')).usage).toBe(1)
      const skipped = await serve([{ quota, id: () => 'u', skip: async () => true }])
      // A skipped request exposes no result: some frameworks answer the empty body with 204.
      expect((await call(`${skipped.url}/ok`)).status).toBeLessThan(300)
      expect((await quota.get('u')).usage).toBe(1)
      const wrong = await serve([{ quota, id: () => 'u', skip: (() => 'no') as never }])
      expect((await call(`${wrong.url}/ok`)).status).toBe(500)
      expect((await quota.get('u')).usage).toBe(1)
    },
  },
  ...FAILING_IDS.map(
    ({ name, id }): MiddlewareCase => ({
      name,
      async run({ store, serve }) {
        const consumed: string[] = []
        const quota = createQuota({
          name: 'api',
          store: store(),
          limit: 3,
          hooks: { onConsume: (e) => void consumed.push(e.id) },
        })
        const app = await serve([{ quota, id: id as () => string }])
        expect((await call(`${app.url}/ok`)).status).toBe(500)
        expect(consumed).toEqual([])
      },
    }),
  ),
]
