import { createQuota } from '@andromeda/core'
import { downStore, hangingStore } from '@andromeda/test-utils'
import { expect } from 'vitest'
import type { MiddlewareCase } from '../case.js'
import { call } from '../http.js'
import { PROBLEM_JSON } from './helpers.js'

/** A store that is down or never answers: 503 or a pass, as `onStoreError` says, within `timeoutMs`. Each brings its own store. */
export const STORE_FAULT_CASES: MiddlewareCase[] = [
  {
    name: "answers 503 problem+json with Retry-After, never 429, when the store is down and onStoreError is 'deny'",
    ownStore: true,
    async run({ serve }) {
      const quota = createQuota({ name: 'api', store: downStore(), limit: 3 })
      const app = await serve([{ quota, id: () => 'u' }])
      const started = Date.now()
      const res = await call(`${app.url}/ok`)
      expect(Date.now() - started).toBeLessThan(1000)
      expect(res.status).toBe(503)
      expect(res.headers.get('content-type')).toMatch(PROBLEM_JSON)
      expect(res.headers.get('retry-after')).toBe('5')
      expect(res.json()).toMatchObject({ status: 503, title: 'Service Unavailable', 'retry-after': 5 })
      expect(res.headers.get('ratelimit')).toBeNull()
    },
  },
  {
    name: 'names its own Retry-After for a store fault with storeDownRetryAfterSeconds',
    ownStore: true,
    async run({ serve }) {
      const quota = createQuota({ name: 'api', store: downStore(), limit: 3 })
      const app = await serve([{ quota, id: () => 'u', storeDownRetryAfterSeconds: 30 }])
      const res = await call(`${app.url}/ok`)
      expect(res.status).toBe(503)
      expect(res.headers.get('retry-after')).toBe('30')
    },
  },
  {
    name: "passes uncounted, without headers, when the store is down and onStoreError is 'allow'",
    ownStore: true,
    async run({ serve }) {
      const quota = createQuota({ name: 'api', store: downStore(), limit: 3 })
      const app = await serve([{ quota, id: () => 'u', onStoreError: 'allow' }])
      const res = await call(`${app.url}/ok`)
      expect(res.status).toBe(200)
      expect(res.json()).toMatchObject({ status: 'degraded', allowed: true })
      expect(res.headers.get('ratelimit')).toBeNull()
    },
  },
  {
    name: "follows the quota's own onStoreError 'deny' with a 503",
    ownStore: true,
    async run({ serve }) {
      const quota = createQuota({ name: 'api', store: downStore(), limit: 3, onStoreError: 'deny' })
      const app = await serve([{ quota, id: () => 'u', onStoreError: 'allow' }])
      const res = await call(`${app.url}/ok`)
      expect(res.status).toBe(503)
      expect(res.headers.get('retry-after')).toBe('5')
    },
  },
  {
    name: 'answers 503 within timeoutMs when the store never answers',
    ownStore: true,
    async run({ serve }) {
      const quota = createQuota({ name: 'api', store: hangingStore(), limit: 3 })
      const app = await serve([{ quota, id: () => 'u', timeoutMs: 200 }])
      const started = Date.now()
      const res = await call(`${app.url}/ok`)
      expect(res.status).toBe(503)
      expect(res.headers.get('retry-after')).toBe('5')
      expect(Date.now() - started).toBeLessThan(2000)
    },
  },
]
