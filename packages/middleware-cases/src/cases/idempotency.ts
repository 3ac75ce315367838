import { createQuota } from '@andromeda/core'
import { expect, vi } from 'vitest'
import type { MiddlewareCase } from '../case.js'
import { call } from '../http.js'
import { apiQuota, PROBLEM_JSON, recordOutcomes } from './helpers.js'

/** The Idempotency-Key header: a retry charged once (across a window boundary too), afresh after a refund, 400 for an unusable key. */
export const IDEMPOTENCY_CASES: MiddlewareCase[] = [
  {
    name: 'charges the same Idempotency-Key once, and answers 400 for an unusable one',
    async run({ store, serve }) {
      const quota = apiQuota(store())
      const app = await serve([{ quota, id: () => 'u', idempotency: true }])
      const claim = (key: string) => call(`${app.url}/claim`, { method: 'POST', headers: { 'Idempotency-Key': key } })
      const first = await claim('"order-1"')
      expect(first.status).toBe(200)
      expect(first.json().status).toBe('granted')
      const second = await claim('"order-1"')
      expect(second.status).toBe(200)
      expect(second.json().status).toBe('replayed')
      expect((await quota.get('u')).usage).toBe(1)
      expect((await claim('order-2')).status).toBe(200)
      expect((await quota.get('u')).usage).toBe(2)
      const tooLong = await claim('x'.repeat(1025))
      expect(tooLong.status).toBe(400)
      expect(tooLong.headers.get('content-type')).toMatch(PROBLEM_JSON)
      expect((await quota.get('u')).usage).toBe(2)
    },
  },
  {
    name: 'charges a retry afresh when the first attempt with that Idempotency-Key was refunded',
    async run({ store, serve }) {
      const quota = apiQuota(store())
      const { refundWhen, settled } = recordOutcomes()
      const app = await serve([{ quota, id: () => 'u', idempotency: true, refundWhen }])
      const failed = await call(`${app.url}/claim?fail=1`, { method: 'POST', headers: { 'Idempotency-Key': 'k' } })
      expect(failed.status).toBe(500)
      await settled(1)
      await vi.waitFor(async () => expect((await quota.get('u')).usage).toBe(0))
      const retry = await call(`${app.url}/claim`, { method: 'POST', headers: { 'Idempotency-Key': 'k' } })
      expect(retry.status).toBe(200)
      expect(retry.json().status).toBe('granted')
      expect((await quota.get('u')).usage).toBe(1)
    },
  },
  {
    name: 'an idempotent retry that crosses a minute boundary replays, and the new minute is not charged',
    async run({ store, serve }) {
      let now = Date.UTC(2025, 2, 1, 10, 0, 59, 990)
      const quota = createQuota({ name: 'calls', store: store(), limit: 100, period: 'minute', clock: () => now })
      const app = await serve([{ quota, id: () => 'acct', idempotency: true }])
      const first = await call(`${app.url}/ok`, { headers: { 'idempotency-key': 'req-1' } })
      expect(first.status).toBe(200)
      expect(first.json()).toMatchObject({ status: 'granted', usage: 1 })
      now += 20
      const retry = await call(`${app.url}/ok`, { headers: { 'idempotency-key': 'req-1' } })
      expect(retry.status).toBe(200)
      expect(retry.json()).toMatchObject({ status: 'replayed', usage: 1 })
      expect((await quota.get('acct')).usage).toBe(0)
    },
  },
]
