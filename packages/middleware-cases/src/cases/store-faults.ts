import { type CounterStore, createQuota, type QuotaOptions } from '@andromeda/core'
import type { QuotaGateOptions } from '@andromeda/core/http'
import { downStore, hangingStore } from '@andromeda/test-utils'
import { expect } from 'vitest'
import type { MiddlewareCase } from '../case.js'
import { call } from '../http.js'
import { apiQuota, PROBLEM_JSON } from './helpers.js'

/** 503 cases that differ only in the store, the options, and the Retry-After (and time) the answer must show. */
const SERVICE_UNAVAILABLE: {
  name: string
  store: () => CounterStore
  quotaOptions?: Pick<QuotaOptions, 'onStoreError'>
  gateOptions: Pick<QuotaGateOptions<unknown>, 'onStoreError' | 'storeDownRetryAfterSeconds' | 'timeoutMs'>
  retryAfter: string
  withinMs?: number
}[] = [
  {
    name: 'names its own Retry-After for a store fault with storeDownRetryAfterSeconds',
    store: downStore,
    gateOptions: { storeDownRetryAfterSeconds: 30 },
    retryAfter: '30',
  },
  {
    name: "follows the quota's own onStoreError 'deny' with a 503",
    store: downStore,
    quotaOptions: { onStoreError: 'deny' },
    gateOptions: { onStoreError: 'allow' },
    retryAfter: '5',
  },
  {
    name: 'answers 503 within timeoutMs when the store never answers',
    store: hangingStore,
    gateOptions: { timeoutMs: 200 },
    retryAfter: '5',
    withinMs: 2000,
  },
]

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
  ...SERVICE_UNAVAILABLE.map(
    ({ name, store, quotaOptions, gateOptions, retryAfter, withinMs }): MiddlewareCase => ({
      name,
      ownStore: true,
      async run({ serve }) {
        const quota = apiQuota(store(), 3, quotaOptions)
        const app = await serve([{ quota, id: () => 'u', ...gateOptions }])
        const started = Date.now()
        const res = await call(`${app.url}/ok`)
        expect(res.status).toBe(503)
        expect(res.headers.get('retry-after')).toBe(retryAfter)
        if (withinMs !== undefined) expect(Date.now() - started).toBeLessThan(withinMs)
      },
    }),
  ),
]
