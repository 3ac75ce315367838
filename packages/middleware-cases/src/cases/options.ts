import { createQuota, InvalidArgumentError } from '@andromeda/core'
import { downStore } from '@andromeda/test-utils'
import { expect } from 'vitest'
import type { CaseContext, MiddlewareCase } from '../case.js'
import type { GateSpec } from '../harness.js'
import { call } from '../http.js'
import { apiQuota } from './helpers.js'

/** Middleware options checked when the middleware is created (bad, misspelt, out of range), and long lifetimes that are accepted. */
export const OPTION_CASES: MiddlewareCase[] = [
  {
    name: 'rejects invalid options when the middleware is created',
    ownStore: true,
    async run<Req>({ harness }: CaseContext<Req>) {
      const quota = createQuota({ name: 'api', store: downStore(), limit: 3 })
      // Synchronously (a middleware factory) or when the app starts (a Fastify registration).
      const created = (gate: GateSpec<Req>) => Promise.resolve().then(() => harness.create(gate))
      await expect(created({ quota } as never)).rejects.toThrow(/id/)
      await expect(created({ quota, id: () => 'u', cost: -1 })).rejects.toThrow(/cost/)
      await expect(created({ quota, id: () => 'u', timeoutMs: 0 })).rejects.toThrow(/timeoutMs/)
      await expect(created({ quota, id: () => 'u', storeDownRetryAfterSeconds: 0 })).rejects.toThrow(
        /storeDownRetryAfterSeconds/,
      )
      await expect(created({ quota, id: () => 'u', cost: -1 })).rejects.toSatisfy(InvalidArgumentError.isInstance)
    },
  },
  {
    name: 'refuses a misspelt option when the middleware is created, naming it and the nearest option',
    ownStore: true,
    async run<Req>({ harness }: CaseContext<Req>) {
      const quota = createQuota({ name: 'api', store: downStore(), limit: 3 })
      const created = (gate: GateSpec<Req>) => Promise.resolve().then(() => harness.create(gate))
      const error = await created({ quota, id: () => 'u', refundWhn: () => false } as never).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toSatisfy(InvalidArgumentError.isInstance)
      expect((error as InvalidArgumentError).argument).toBe('refundWhn')
      expect((error as Error).message).toContain("'refundWhen'")
      await expect(created({ quota, id: () => 'u', headers: { legasy: 'x-ratelimit' } } as never)).rejects.toThrow(
        /headers\.legasy/,
      )
      await expect(created({ quota, id: () => 'u', idempotency: { hedaer: 'X-Key' } } as never)).rejects.toThrow(
        /idempotency\.hedaer/,
      )
    },
  },
  {
    name: 'timeoutMs of 2^31 ms is refused when the middleware is created, naming the largest value; 2^31 - 1 is accepted',
    ownStore: true,
    async run<Req>({ harness }: CaseContext<Req>) {
      const quota = createQuota({ name: 'api', store: downStore(), limit: 3 })
      const created = (gate: GateSpec<Req>) => Promise.resolve().then(() => harness.create(gate))
      const error = await created({ quota, id: () => 'u', timeoutMs: 2 ** 31 }).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(error).toSatisfy(InvalidArgumentError.isInstance)
      expect((error as InvalidArgumentError).argument).toBe('timeoutMs')
      expect((error as Error).message).toContain('2147483647')
      await created({ quota, id: () => 'u', timeoutMs: 2 ** 31 - 1 })
    },
  },
  {
    name: 'timeoutMs and holdMs of 30 days: a request is granted, not answered 503',
    async run({ store, serve }) {
      const quota = apiQuota(store())
      const app = await serve([{ quota, id: () => 'u', timeoutMs: 2 ** 31 - 1, holdMs: 30 * 86_400_000 }])
      expect((await call(`${app.url}/ok`)).status).toBe(200)
      expect((await quota.get('u')).usage).toBe(1)
    },
  },
]
