import { describe, expect, it, vi } from 'vitest'
import {
  appendListItem,
  formatPolicyItem,
  formatRateLimitItem,
  resolveHeaderOptions,
  sfString,
  writeRateLimitHeaders,
} from '../src/http/headers.js'
import {
  createQuotaGate,
  defaultRefundWhen,
  type HeaderAccess,
  QUOTA_EXCEEDED_TYPE,
  quotaExceededProblem,
  secondsUntil,
} from '../src/http/index.js'
import {
  type ApplyOptions,
  type ApplyResult,
  type CounterOp,
  type CounterStore,
  createQuota,
  type Quota,
  type QuotaResult,
  type Reservation,
  StoreError,
} from '../src/index.js'

/** A minimal single-process store (no TTLs, holds that never expire) so these tests need no adapter package. */
function mapStore(): CounterStore & { values: Map<string, number> } {
  const values = new Map<string, number>()
  const records = new Map<string, number[]>()
  const holds = new Map<string, number>()
  return {
    values,
    capabilities: { shared: false, atomic: 'process', canApplyTogether: () => true },
    async apply(ops: readonly CounterOp[], options: ApplyOptions = {}): Promise<ApplyResult> {
      if (options.idempotencyKey && records.has(options.idempotencyKey)) {
        return { ok: true, values: records.get(options.idempotencyKey)!, replayed: true }
      }
      const next: number[] = []
      for (const [index, op] of ops.entries()) {
        const current = values.get(op.key)
        if (op.settle) {
          // Holds never expire here: a settle gives back what is not kept.
          const held = holds.get(`${op.key}:${op.settle.id}`)
          if (held === undefined) return { ok: false, index, reason: 'hold', values: [current] }
          next.push((current ?? 0) - (held - Math.min(op.settle.keep, held)))
          continue
        }
        if (current === undefined && op.ifMissing === 'report')
          return { ok: false, index, reason: 'missing', values: [] }
        const value = (current ?? 0) + op.delta
        if (op.max !== undefined && op.delta > 0 && value > op.max)
          return { ok: false, index, reason: 'limit', values: [current ?? 0] }
        if (op.min !== undefined && op.delta < 0 && value < op.min)
          return { ok: false, index, reason: 'floor', values: [current ?? 0] }
        next.push(value)
      }
      for (const [i, op] of ops.entries()) {
        values.set(op.key, next[i]!)
        if (op.hold) holds.set(`${op.key}:${op.hold.id}`, op.delta)
        if (op.settle) holds.delete(`${op.key}:${op.settle.id}`)
      }
      if (options.idempotencyKey) records.set(options.idempotencyKey, next)
      if (options.clearIdempotencyKey) records.delete(options.clearIdempotencyKey)
      return { ok: true, values: next }
    },
    async seed() {
      return true
    },
    async get(key) {
      const value = values.get(key)
      return value === undefined ? undefined : { value }
    },
    async set(key, value) {
      values.set(key, value)
    },
    async delete(key) {
      values.delete(key)
    },
    async acquireLock() {
      return true
    },
    async releaseLock() {
      return true
    },
  }
}

function mapAccess(): HeaderAccess & { headers: Map<string, string>; isSent: boolean } {
  const headers = new Map<string, string>()
  return {
    headers,
    isSent: false,
    get(name) {
      return headers.get(name.toLowerCase())
    },
    set(name, value) {
      headers.set(name.toLowerCase(), value)
    },
    sent() {
      return this.isSent
    },
  }
}

describe('RateLimit header fields', () => {
  it('serialise a policy as a Structured Field String with q and w, and the state with r and t', () => {
    expect(formatPolicyItem({ policy: 'voucher', limit: 100, remaining: 42, windowSeconds: 86_400 })).toBe(
      '"voucher";q=100;w=86400',
    )
    expect(formatPolicyItem({ policy: 'voucher', limit: 100, remaining: 42 })).toBe('"voucher";q=100')
    expect(formatRateLimitItem({ policy: 'voucher', limit: 100, remaining: 42, resetSeconds: 3600 })).toBe(
      '"voucher";r=42;t=3600',
    )
    expect(formatRateLimitItem({ policy: 'voucher', limit: 100, remaining: 42 })).toBe('"voucher";r=42')
  })

  it('escape quotes and backslashes, and percent-encode what a String cannot hold', () => {
    expect(sfString('a"b\\c')).toBe('"a\\"b\\\\c"')
    expect(sfString('café 100%')).toBe('"caf%C3%A9 100%25"')
    expect(sfString('tab\there')).toBe('"tab%09here"')
  })

  it('clamp integers to what a Structured Field Integer may carry', () => {
    expect(formatPolicyItem({ policy: 'p', limit: Number.MAX_SAFE_INTEGER, remaining: 0 })).toBe(
      '"p";q=999999999999999',
    )
  })

  it('append a second policy to the list and replace one that is listed already', () => {
    expect(appendListItem(undefined, '"a";r=1')).toBe('"a";r=1')
    expect(appendListItem('"a";r=1', '"b";r=2')).toBe('"a";r=1, "b";r=2')
    expect(appendListItem('"a";r=1, "b";r=2', '"a";r=0')).toBe('"b";r=2, "a";r=0')
    expect(appendListItem('"x,y";r=1', '"z";r=2')).toBe('"x,y";r=1, "z";r=2')
  })

  it('count whole seconds until the reset, at least 1', () => {
    expect(secondsUntil(10_001, 0)).toBe(11)
    expect(secondsUntil(10_000, 0)).toBe(10)
    expect(secondsUntil(5, 0)).toBe(1)
    expect(secondsUntil(0, 1000)).toBe(1)
  })

  it('keep the most restrictive quota in the legacy fields', () => {
    const access = mapAccess()
    const options = resolveHeaderOptions({ legacy: 'ratelimit' })
    writeRateLimitHeaders(access, { policy: 'a', limit: 10, remaining: 3, resetSeconds: 60 }, options)
    writeRateLimitHeaders(access, { policy: 'b', limit: 100, remaining: 50, resetSeconds: 5 }, options)
    expect(access.headers.get('ratelimit-remaining')).toBe('3')
    expect(access.headers.get('ratelimit-limit')).toBe('10')
    expect(access.headers.get('ratelimit-reset')).toBe('60')
    expect(access.headers.get('ratelimit')).toBe('"a";r=3;t=60, "b";r=50;t=5')
  })

  it('write nothing once the response head was sent', () => {
    const access = mapAccess()
    access.isSent = true
    writeRateLimitHeaders(access, { policy: 'a', limit: 10, remaining: 3 }, resolveHeaderOptions(true))
    expect(access.headers.size).toBe(0)
  })
})

describe('problem details', () => {
  it('name the violated policy, the limit and what remains (RFC 9457)', () => {
    expect(
      quotaExceededProblem({ policy: 'voucher', limit: 3, remaining: 0, cost: 1, retryAfterSeconds: 7 }),
    ).toMatchObject({
      type: QUOTA_EXCEEDED_TYPE,
      title: 'Quota exceeded',
      status: 429,
      'violated-policies': ['voucher'],
      limit: 3,
      remaining: 0,
      'retry-after': 7,
    })
  })
})

describe('createQuotaGate', () => {
  it('refunds exactly what a quota-level cost override charged, once', async () => {
    const store = mapStore()
    const quota = createQuota({ name: 'api', store, limit: 10, cost: (_id, requested) => requested * 3 })
    const gate = createQuotaGate<object>({ quota, id: () => 'u', cost: 2 })
    const decision = await gate.begin({}, {})
    if (decision.action !== 'grant') throw new Error(`expected a grant, got ${decision.action}`)
    expect(decision.result.usage).toBe(6)
    await decision.settle({ status: 500, aborted: false })
    await decision.settle({ status: 500, aborted: false })
    expect((await quota.get('u')).usage).toBe(0)
  })

  it('with refundWhen: false, charges each request with one plain consume (no hold to settle)', async () => {
    const store = mapStore()
    const calls: CounterOp[][] = []
    const apply = store.apply.bind(store)
    store.apply = (ops, options) => {
      calls.push([...ops])
      return apply(ops, options)
    }
    const quota = createQuota({ name: 'api', store, limit: 2 })
    const gate = createQuotaGate<object>({ quota, id: () => 'u', refundWhen: false })
    const outcomes = []
    for (let i = 0; i < 3; i++) {
      const decision = await gate.begin({}, {})
      outcomes.push(decision.action)
      if (decision.action === 'grant') await decision.settle({ status: 500, aborted: false })
    }
    expect(outcomes).toEqual(['grant', 'grant', 'refuse'])
    expect(calls).toHaveLength(3)
    expect(calls.flat().some((op) => op.hold !== undefined || op.settle !== undefined)).toBe(false)
    expect((await quota.get('u')).usage).toBe(2)
  })

  it('does not refund a success, nor a client that went away while the handler succeeded', async () => {
    const quota = createQuota({ name: 'api', store: mapStore(), limit: 10 })
    const gate = createQuotaGate<object>({ quota, id: () => 'u' })
    const ok = await gate.begin({}, {})
    const gone = await gate.begin({}, {})
    if (ok.action !== 'grant' || gone.action !== 'grant') throw new Error('expected grants')
    await ok.settle({ status: 200, aborted: false })
    await gone.settle({ status: 200, aborted: true })
    expect((await quota.get('u')).usage).toBe(2)
    expect(defaultRefundWhen({ status: 200, aborted: false, error: new Error('x') })).toBe(true)
    expect(defaultRefundWhen({ status: 404, aborted: false })).toBe(true)
  })

  it('never refunds a replayed idempotent call: its units belong to the first one', async () => {
    const quota = createQuota({ name: 'api', store: mapStore(), limit: 10 })
    const gate = createQuotaGate<object>({ quota, id: () => 'u', idempotency: true })
    const first = await gate.begin({}, { 'idempotency-key': 'k' })
    const again = await gate.begin({}, { 'idempotency-key': 'k' })
    if (first.action !== 'grant' || again.action !== 'grant') throw new Error('expected grants')
    expect(again.result.status).toBe('replayed')
    await again.settle({ status: 500, aborted: false })
    expect((await quota.get('u')).usage).toBe(1)
  })

  it('omits Retry-After when the cost can never be granted', async () => {
    const quota = createQuota({ name: 'api', store: mapStore(), limit: 2, period: 'day' })
    const gate = createQuotaGate<object>({ quota, id: () => 'u', cost: 5 })
    const decision = await gate.begin({}, {})
    if (decision.action !== 'refuse') throw new Error('expected a refusal')
    expect(decision.status).toBe(429)
    expect(decision.retryAfterSeconds).toBeUndefined()
    const access = mapAccess()
    decision.writeHeaders(access)
    expect(access.headers.has('retry-after')).toBe(false)
    expect(access.headers.get('ratelimit-policy')).toBe('"api";q=2;w=86400')
  })

  it('gives back what a request counted when no decision can be made after the charge (its clock failed)', async () => {
    const store = mapStore()
    const broken = new Error('time source down')
    let reads = 0
    // The charge reads the clock once; the grant's reset time reads it again, and that read fails.
    const clock = () => {
      if (++reads > 1) throw broken
      return Date.UTC(2026, 0, 31, 12)
    }
    const quota = createQuota({ name: 'api', store, limit: 5, period: 'day', clock })
    const gate = createQuotaGate<object>({ quota, id: () => 'u' })
    await expect(gate.begin({}, {})).rejects.toBe(broken)
    await vi.waitFor(() => expect([...store.values.values()]).toEqual([0]))
  })

  it('carries every refusal (400, 429, 503) as a problem+json body ready to send', async () => {
    const down = mapStore()
    down.apply = async () => {
      throw new StoreError('connection refused', { retryable: true })
    }
    const full = createQuota({ name: 'api', store: mapStore(), limit: 1 })
    await full.consume('u')
    const refusals = [
      await createQuotaGate<object>({ quota: full, id: () => 'u', idempotency: true }).begin(
        {},
        { 'idempotency-key': '' },
      ),
      await createQuotaGate<object>({ quota: full, id: () => 'u' }).begin({}, {}),
      await createQuotaGate<object>({
        quota: createQuota({ name: 'api', store: down, limit: 1 }),
        id: () => 'u',
      }).begin({}, {}),
    ]
    expect(refusals.map((d) => (d.action === 'refuse' ? d.status : d.action))).toEqual([400, 429, 503])
    for (const decision of refusals) {
      if (decision.action !== 'refuse') throw new Error('expected a refusal')
      expect(decision.contentType).toBe('application/problem+json')
      expect(JSON.parse(decision.body)).toEqual(decision.problem)
      expect(decision.problem.status).toBe(decision.status)
    }
  })

  it('answers a store fault with a 503 that says when to come back (Retry-After, and in the body)', async () => {
    const down = mapStore()
    down.apply = async () => {
      throw new StoreError('connection refused', { retryable: true })
    }
    const quota = createQuota({ name: 'api', store: down, limit: 2 })
    for (const [options, seconds] of [
      [{}, 5],
      [{ storeDownRetryAfterSeconds: 30 }, 30],
    ] as const) {
      const decision = await createQuotaGate<object>({ quota, id: () => 'u', ...options }).begin({}, {})
      if (decision.action !== 'refuse') throw new Error('expected a refusal')
      expect(decision.status).toBe(503)
      expect(decision.retryAfterSeconds).toBe(seconds)
      expect(decision.problem['retry-after']).toBe(seconds)
      const access = mapAccess()
      decision.writeHeaders(access)
      expect(access.headers.get('retry-after')).toBe(String(seconds))
      expect(decision.headerNames).toEqual(['Retry-After'])
    }
    expect(() => createQuotaGate<object>({ quota, id: () => 'u', storeDownRetryAfterSeconds: 0 })).toThrow(
      /storeDownRetryAfterSeconds/,
    )
  })

  it('reports a failed refund and a throwing refundWhen to onError instead of rejecting', async () => {
    const onError = vi.fn()
    const granted: QuotaResult = { status: 'granted', allowed: true, usage: 1, limit: 5, remaining: 4 }
    const fake = {
      name: 'fake',
      period: undefined,
      reserve: async (): Promise<Reservation> => ({
        result: granted,
        cost: 1,
        expiresAt: Date.now() + 60_000,
        commit: async () => granted,
        release: async () => {
          throw new Error('refund failed')
        },
      }),
    } as unknown as Quota
    const gate = createQuotaGate<object>({ quota: fake, id: () => 'u', onError })
    const failing = await gate.begin({}, {})
    if (failing.action !== 'grant') throw new Error('expected a grant')
    await expect(failing.settle({ status: 500, aborted: false })).resolves.toBeUndefined()
    expect(onError).toHaveBeenCalledWith(expect.objectContaining({ message: 'refund failed' }), {})

    const throwing = createQuotaGate<object>({
      quota: fake,
      id: () => 'u',
      onError,
      refundWhen: () => {
        throw new Error('bad rule')
      },
    })
    const decision = await throwing.begin({}, {})
    if (decision.action !== 'grant') throw new Error('expected a grant')
    await expect(decision.settle({ status: 500, aborted: false })).resolves.toBeUndefined()
    expect(onError).toHaveBeenLastCalledWith(expect.objectContaining({ message: 'bad rule' }), {})
  })

  it('settles through the public reserve() handle, once, for a quota not made by createQuota', async () => {
    const settled: string[] = []
    const granted: QuotaResult = { status: 'granted', allowed: true, usage: 3, limit: 5, remaining: 2 }
    const fake = {
      name: 'fake',
      period: undefined,
      reserve: async (_id: string, cost = 1): Promise<Reservation> => ({
        result: granted,
        cost,
        expiresAt: Date.now() + 60_000,
        commit: async () => {
          settled.push(`commit ${cost}`)
          return granted
        },
        release: async () => {
          settled.push(`release ${cost}`)
          return granted
        },
      }),
    } as unknown as Quota
    const gate = createQuotaGate<object>({ quota: fake, id: () => 'u', cost: 3 })
    const refunded = await gate.begin({}, {})
    const kept = await gate.begin({}, {})
    if (refunded.action !== 'grant' || kept.action !== 'grant') throw new Error('expected grants')
    await refunded.settle({ status: 503, aborted: false })
    await refunded.settle({ status: 503, aborted: false })
    await kept.settle({ status: 200, aborted: false })
    expect(settled).toEqual(['release 3', 'commit 3'])
  })

  it('awaits an async refundWhen, and reports one that answers no boolean (the units stay charged)', async () => {
    const onError = vi.fn()
    const quota = createQuota({ name: 'api', store: mapStore(), limit: 3 })
    const asyncRule = createQuotaGate<object>({ quota, id: () => 'u', refundWhen: async (o) => o.status >= 500 })
    for (const status of [200, 200, 500]) {
      const decision = await asyncRule.begin({}, {})
      if (decision.action !== 'grant') throw new Error('expected a grant')
      await decision.settle({ status, aborted: false })
    }
    expect((await quota.get('u')).usage).toBe(2)
    const wrongType = createQuotaGate<object>({ quota, id: () => 'u', onError, refundWhen: (() => 'yes') as never })
    const decision = await wrongType.begin({}, {})
    if (decision.action !== 'grant') throw new Error('expected a grant')
    await decision.settle({ status: 500, aborted: false })
    expect(onError).toHaveBeenCalledWith(
      expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', argument: 'refundWhen' }),
      {},
    )
    expect((await quota.get('u')).usage).toBe(3)
  })
})
