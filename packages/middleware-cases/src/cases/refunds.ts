import { InvalidArgumentError } from '@andromeda/core'
import type { SettleOutcome } from '@andromeda/core/http'
import { parseRateLimitItems as parseItems } from '@andromeda/test-utils'
import { expect, vi } from 'vitest'
import type { CaseContext, MiddlewareCase } from '../case.js'
import { call } from '../http.js'
import { apiQuota, byUser, hourlyQuota, recordOutcomes } from './helpers.js'

/** An app behind one 3-per-hour quota counted per user, with a `refundWhen` that records each settlement. */
async function hourlyApp<Req>({ req, store, serve }: CaseContext<Req>) {
  const { quota, compensations } = hourlyQuota(store())
  const { outcomes, refundWhen, settled } = recordOutcomes()
  const app = await serve([{ quota, id: byUser(req), refundWhen }])
  return { app, quota, compensations, outcomes, settled }
}

/** Handlers that answer a status themselves: whether their units come back, exactly once. */
const ANSWERED = [
  { name: 'refunds a handler that answers 500 exactly once', path: '/answers-500', status: 500, refunded: true },
  { name: 'does not refund a 200', path: '/ok', status: 200, refunded: false },
]

/** When a request's units are given back: a failed handler once, a success or a client gone never, and `refundWhen` awaited and checked. */
export const REFUND_CASES: MiddlewareCase[] = [
  {
    name: 'refunds a handler that throws exactly once, and its 500 keeps the RateLimit headers',
    async run(ctx) {
      const { app, quota, compensations, outcomes, settled } = await hourlyApp(ctx)
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
  ...ANSWERED.map(
    ({ name, path, status, refunded }): MiddlewareCase => ({
      name,
      async run(ctx) {
        const { app, quota, compensations, outcomes, settled } = await hourlyApp(ctx)
        expect((await call(`${app.url}${path}`)).status).toBe(status)
        await settled(1)
        if (refunded) await vi.waitFor(() => expect(compensations).toEqual([1]))
        else expect(compensations).toEqual([])
        expect(outcomes).toEqual([{ status, aborted: false }])
        expect((await quota.get('anonymous')).usage).toBe(refunded ? 0 : 1)
      },
    }),
  ),
  {
    name: 'does not refund a request whose client went away while the handler succeeded',
    async run(ctx) {
      const { app, quota, outcomes, settled } = await hourlyApp(ctx)
      await expect(call(`${app.url}/slow`, { signal: AbortSignal.timeout(50) })).rejects.toThrow()
      await settled(1)
      expect(outcomes).toEqual([{ status: 200, aborted: true }])
      expect((await quota.get('anonymous')).usage).toBe(1)
    },
  },
  {
    name: 'an async refundWhen is awaited: limit 3, it answers "refund" a turn later, five successful requests all answer 200',
    async run({ store, serve }) {
      const quota = apiQuota(store())
      const { outcomes, refundWhen } = recordOutcomes()
      // A gate that took the promise itself for the answer would keep the units: 429 from the fourth.
      const refundAfterATurn = async (outcome: SettleOutcome) => {
        refundWhen(outcome)
        await new Promise((resolve) => setImmediate(resolve))
        return true
      }
      const app = await serve([{ quota, id: () => 'u', refundWhen: refundAfterATurn }])
      const statuses: number[] = []
      for (let i = 0; i < 5; i++) {
        statuses.push((await call(`${app.url}/ok`)).status)
        // Each granted request settles before the next one is sent (the refund is decided then).
        await vi.waitFor(async () => expect((await quota.get('u')).usage).toBe(0))
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200])
      expect(outcomes.map((o) => o.status)).toEqual([200, 200, 200, 200, 200])
    },
  },
  {
    name: 'a refundWhen that answers a string is an InvalidArgumentError told to onError, and nothing is refunded',
    async run({ store, serve }) {
      const quota = apiQuota(store())
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
