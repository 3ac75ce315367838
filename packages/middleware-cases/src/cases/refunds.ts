import { createQuota, InvalidArgumentError } from '@andromeda/core'
import { parseRateLimitItems as parseItems } from '@andromeda/test-utils'
import { expect, vi } from 'vitest'
import type { MiddlewareCase } from '../case.js'
import { call } from '../http.js'
import { byUser, hourlyQuota, recordOutcomes } from './helpers.js'

/** When a request's units are given back: a failed handler once, a success or a client gone never, and `refundWhen` awaited and checked. */
export const REFUND_CASES: MiddlewareCase[] = [
  {
    name: 'refunds a handler that throws exactly once, and its 500 keeps the RateLimit headers',
    async run({ req, store, serve }) {
      const { quota, compensations } = hourlyQuota(store())
      const { outcomes, refundWhen, settled } = recordOutcomes()
      const app = await serve([{ quota, id: byUser(req), refundWhen }])
      const res = await call(`${app.url}/throws`)
      expect(res.status).toBe(500)
      expect(res.headers.get('ratelimit-policy')).toBe('"api";q=3;w=3600')
      expect(parseItems(res.headers.get('ratelimit') ?? undefined).api!.r).toBe(2)
      await settled(1)
      await vi.waitFor(() => expect(compensations).toEqual([1]))
      expect(outcomes).toHaveLength(1)
      expect(outcomes[0]).toMatchObject({ status: 500, aborted: false })
      expect((await quota.get('anonymous')).usage).toBe(0)
    },
  },
  {
    name: 'refunds a handler that answers 500 exactly once',
    async run({ req, store, serve }) {
      const { quota, compensations } = hourlyQuota(store())
      const { outcomes, refundWhen, settled } = recordOutcomes()
      const app = await serve([{ quota, id: byUser(req), refundWhen }])
      expect((await call(`${app.url}/answers-500`)).status).toBe(500)
      await settled(1)
      await vi.waitFor(() => expect(compensations).toEqual([1]))
      expect(outcomes).toEqual([{ status: 500, aborted: false }])
      expect((await quota.get('anonymous')).usage).toBe(0)
    },
  },
  {
    name: 'does not refund a 200',
    async run({ req, store, serve }) {
      const { quota, compensations } = hourlyQuota(store())
      const { outcomes, refundWhen, settled } = recordOutcomes()
      const app = await serve([{ quota, id: byUser(req), refundWhen }])
      expect((await call(`${app.url}/ok`)).status).toBe(200)
      await settled(1)
      expect(outcomes).toEqual([{ status: 200, aborted: false }])
      expect(compensations).toEqual([])
      expect((await quota.get('anonymous')).usage).toBe(1)
    },
  },
  {
    name: 'does not refund a request whose client went away while the handler succeeded',
    async run({ store, serve }) {
      const quota = createQuota({ name: 'api', store: store(), limit: 3 })
      const { outcomes, refundWhen, settled } = recordOutcomes()
      const app = await serve([{ quota, id: () => 'u', refundWhen }])
      await expect(call(`${app.url}/slow`, { signal: AbortSignal.timeout(50) })).rejects.toThrow()
      await settled(1)
      expect(outcomes).toEqual([{ status: 200, aborted: true }])
      expect((await quota.get('u')).usage).toBe(1)
    },
  },
  {
    name: 'an async refundWhen is awaited: limit 3, five successful requests answer 200, 200, 200, 429, 429',
    async run({ store, serve }) {
      const quota = createQuota({ name: 'api', store: store(), limit: 3 })
      const settledOutcomes: boolean[] = []
      const app = await serve([
        {
          quota,
          id: () => 'u',
          refundWhen: async (outcome) => {
            const refund = outcome.status >= 500
            settledOutcomes.push(refund)
            return refund
          },
        },
      ])
      const statuses: number[] = []
      for (let i = 0; i < 5; i++) {
        statuses.push((await call(`${app.url}/ok`)).status)
        // Each granted request settles before the next one is sent (the refund is decided then).
        if (i < 3) await vi.waitFor(() => expect(settledOutcomes).toHaveLength(i + 1))
      }
      expect(statuses).toEqual([200, 200, 200, 429, 429])
      expect((await quota.get('u')).usage).toBe(3)
    },
  },
  {
    name: 'a refundWhen that answers a string is an InvalidArgumentError told to onError, and nothing is refunded',
    async run({ store, serve }) {
      const quota = createQuota({ name: 'api', store: store(), limit: 3 })
      const errors: unknown[] = []
      const app = await serve([
        { quota, id: () => 'u', refundWhen: (() => 'yes') as never, onError: (error) => void errors.push(error) },
      ])
      expect((await call(`${app.url}/answers-500`)).status).toBe(500)
      await vi.waitFor(() => expect(errors).toHaveLength(1))
      expect(errors[0]).toSatisfy(InvalidArgumentError.isInstance)
      expect((errors[0] as InvalidArgumentError).argument).toBe('refundWhen')
      expect((await quota.get('u')).usage).toBe(1)
    },
  },
]
