import { type CounterStore, createQuota, InvalidArgumentError } from '@andromeda/core'
import { defaultRefundWhen, type SettleOutcome } from '@andromeda/core/http'
import { downStore, hangingStore, parseRateLimitItems as parseItems } from '@andromeda/test-utils'
import { expect, vi } from 'vitest'
import type { GateSpec, MiddlewareHarness, RequestView, ServedApp } from './harness.js'
import { call } from './http.js'

/** What a case gets: the harness, a store of the run's kind, and `serve` (closed after the case). */
export interface CaseContext<Req> {
  harness: MiddlewareHarness<Req>
  req: RequestView<Req>
  /** A store of the run's kind (memory or Redis) for one quota. */
  store(): CounterStore
  serve(gates: GateSpec<Req>[]): Promise<ServedApp>
}

export interface MiddlewareCase {
  name: string
  /** The case brings its own store (a down or hanging one): run it once, not once per store kind. */
  ownStore?: boolean
  run<Req>(ctx: CaseContext<Req>): Promise<void>
}

const PROBLEM_JSON = /^application\/problem\+json/
const QUOTA_EXCEEDED = 'https://iana.org/assignments/http-problem-types#quota-exceeded'

/** Records every settlement through `refundWhen`, keeping the default rule. */
function recordOutcomes() {
  const outcomes: SettleOutcome[] = []
  const refundWhen = (outcome: SettleOutcome) => {
    outcomes.push(outcome)
    return defaultRefundWhen(outcome)
  }
  /** Wait until `count` requests settled, then one more turn so a duplicate settlement would show. */
  const settled = async (count: number) => {
    await vi.waitFor(() => expect(outcomes.length).toBeGreaterThanOrEqual(count))
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return { outcomes, refundWhen, settled }
}

/** A quota of 3 per hour that records what it gave back on its own. */
function hourlyQuota(store: CounterStore) {
  const compensations: number[] = []
  const quota = createQuota({
    name: 'api',
    store,
    limit: 3,
    period: 'hour',
    hooks: { onCompensate: (event) => void compensations.push(event.cost) },
  })
  return { quota, compensations }
}

const byUser = <Req>(req: RequestView<Req>) => (r: Req) => req.header(r, 'x-user') ?? 'anonymous'

export const MIDDLEWARE_CASES: MiddlewareCase[] = [
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
  {
    name: 'charges the same Idempotency-Key once, and answers 400 for an unusable one',
    async run({ store, serve }) {
      const quota = createQuota({ name: 'api', store: store(), limit: 3 })
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
      const quota = createQuota({ name: 'api', store: store(), limit: 3 })
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
    name: 'honours cost from a function, skip and a custom id',
    async run({ req, store, serve }) {
      const quota = createQuota({ name: 'api', store: store(), limit: 10 })
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
            req.path(r) === '/free' ? undefined : req.method(r) === 'GET' ? { quota: reads, id: 'u' } : { quota: writes, id: 'u', cost: 2 },
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
    name: 'lists two stacked quotas together, and a failed request keeps both and is refunded by both',
    async run({ store, serve }) {
      const perUser = createQuota({ name: 'user', store: store(), limit: 5, period: 'minute' })
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
      const quota = createQuota({ name: 'api', store: store(), limit: 3, period: 'day' })
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
      const quota = createQuota({ name: 'api', store: store(), limit: 1, period: 'minute' })
      const app = await serve([
        {
          quota,
          id: () => 'u',
          refusalBody: (refusal) => ({ message: 'slow down', remaining: refusal.result.remaining, retryAfter: refusal.retryAfterSeconds }),
        },
      ])
      expect((await call(`${app.url}/ok`)).status).toBe(200)
      const res = await call(`${app.url}/ok`)
      expect(res.status).toBe(429)
      expect(res.json()).toEqual({ message: 'slow down', remaining: 0, retryAfter: Number(res.headers.get('retry-after')) })
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
      expect(parseItems(res.headers.get('ratelimit') ?? undefined).api!.r).toBe(0)
    },
  },
  {
    name: "hands an id function that throws to the framework's error handling and charges nothing",
    async run({ store, serve }) {
      const consumed: string[] = []
      const quota = createQuota({ name: 'api', store: store(), limit: 3, hooks: { onConsume: (e) => void consumed.push(e.id) } })
      const app = await serve([
        {
          quota,
          id: () => {
            throw new Error('no user')
          },
        },
      ])
      expect((await call(`${app.url}/ok`)).status).toBe(500)
      expect(consumed).toEqual([])
    },
  },
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
      await expect(created({ quota, id: () => 'u', storeDownRetryAfterSeconds: 0 })).rejects.toThrow(/storeDownRetryAfterSeconds/)
      await expect(created({ quota, id: () => 'u', cost: -1 })).rejects.toSatisfy(InvalidArgumentError.isInstance)
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
      const app = await serve([{ quota, id: () => 'u', refundWhen: (() => 'yes') as never, onError: (error) => void errors.push(error) }])
      expect((await call(`${app.url}/answers-500`)).status).toBe(500)
      await vi.waitFor(() => expect(errors).toHaveLength(1))
      expect(errors[0]).toSatisfy(InvalidArgumentError.isInstance)
      expect((errors[0] as InvalidArgumentError).argument).toBe('refundWhen')
      expect((await quota.get('u')).usage).toBe(1)
    },
  },
  {
    name: 'an async skip is awaited; a skip that answers a string fails the request and counts nothing',
    async run({ store, serve }) {
      const quota = createQuota({ name: 'api', store: store(), limit: 3 })
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
  {
    name: 'an id function that answers a number fails the request and counts nothing',
    async run({ store, serve }) {
      const consumed: string[] = []
      const quota = createQuota({ name: 'api', store: store(), limit: 3, hooks: { onConsume: (e) => void consumed.push(e.id) } })
      const app = await serve([{ quota, id: (() => 42) as never }])
      expect((await call(`${app.url}/ok`)).status).toBe(500)
      expect(consumed).toEqual([])
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
  {
    name: "Retry-After and the RateLimit reset come from the quota's clock, 2 minutes behind or ahead of real time",
    async run({ store, serve }) {
      for (const offsetMs of [-120_000, 120_000]) {
        const quota = createQuota({ name: 'api', store: store(), limit: 1, period: 'minute', clock: () => Date.now() + offsetMs })
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
      await expect(created({ quota, id: () => 'u', headers: { legasy: 'x-ratelimit' } } as never)).rejects.toThrow(/headers\.legasy/)
      await expect(created({ quota, id: () => 'u', idempotency: { hedaer: 'X-Key' } } as never)).rejects.toThrow(/idempotency\.hedaer/)
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
      const quota = createQuota({ name: 'api', store: store(), limit: 3 })
      const app = await serve([{ quota, id: () => 'u', timeoutMs: 2 ** 31 - 1, holdMs: 30 * 86_400_000 }])
      expect((await call(`${app.url}/ok`)).status).toBe(200)
      expect((await quota.get('u')).usage).toBe(1)
    },
  },
]
