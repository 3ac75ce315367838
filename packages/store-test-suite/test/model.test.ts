import { describe, expect, it } from 'vitest'
import { type ModelQuotaSpec, QuotaModel, windowStartAt } from '../src/model.js'

const T0 = Date.UTC(2026, 0, 1)
const spec = (over: Partial<ModelQuotaSpec> = {}): ModelQuotaSpec => ({
  name: 'q',
  limit: () => 3,
  idempotencyTtlMs: 1_000,
  ...over,
})

describe('the property suite model', () => {
  it('holds count toward usage until settled, and come back by themselves once they expire (lazily: at a refusal or a read)', () => {
    const m = new QuotaModel()
    const q = spec({ limit: () => 5 })
    const hold = m.reserve(q, 'a', 3, undefined, 1_000, T0)
    expect(hold).toMatchObject({ units: 3, result: { status: 'granted', usage: 3 } })
    expect(m.consume(q, 'a', 3, undefined, T0 + 999)).toMatchObject({ status: 'refused', reason: 'limit', usage: 3 })
    // Expired, but a consume that fits still sees its units; a refusal or a read gives them back.
    expect(m.consume(q, 'a', 1, undefined, T0 + 1_000)).toMatchObject({ status: 'granted', usage: 4 })
    expect(m.get(q, 'a', T0 + 1_000)).toMatchObject({ usage: 1 })
    expect(m.settle(hold, 3, T0 + 1_000)).toBe('expired')
    const kept = m.reserve(q, 'a', 4, undefined, 1_000, T0 + 1_000)
    expect(m.settle(kept, 1, T0 + 1_001)).toMatchObject({ status: 'granted', usage: 2 })
    expect(m.settle(kept, 4, T0 + 1_002)).toMatchObject({ status: 'granted', usage: 2 })
  })

  it('grants up to the limit; a refusal changes nothing and says why', () => {
    const m = new QuotaModel()
    const q = spec()
    expect(m.consume(q, 'a', 2, undefined, T0)).toEqual({
      status: 'granted',
      allowed: true,
      usage: 2,
      limit: 3,
      remaining: 1,
    })
    expect(m.consume(q, 'a', 2, undefined, T0)).toEqual({
      status: 'refused',
      allowed: false,
      reason: 'limit',
      usage: 2,
      limit: 3,
      remaining: 1,
    })
    expect(m.refund(q, 'a', 3, undefined, T0)).toMatchObject({ allowed: false, reason: 'floor', usage: 2 })
    expect(m.refund(q, 'never', 0, undefined, T0)).toMatchObject({ allowed: false, reason: 'floor', usage: 0 })
    expect(m.get(q, 'a', T0)).toEqual({ usage: 2, limit: 3, remaining: 1 })
  })

  it('sets a TTL on create, never re-arms it, and forgets the counter when it lapses', () => {
    const m = new QuotaModel()
    const q = spec({ ttlMs: 100 })
    expect(m.consume(q, 'a', 1, undefined, T0).resetAt).toBe(T0 + 100)
    expect(m.consume(q, 'a', 1, undefined, T0 + 50).resetAt).toBe(T0 + 100)
    expect(m.get(q, 'a', T0 + 100)).toEqual({ usage: 0, limit: 3, remaining: 3 })
  })

  it('replays a granted idempotent call until its record lapses, and records nothing for a refused one', () => {
    const m = new QuotaModel()
    const q = spec()
    const first = m.consume(q, 'a', 2, 'k', T0)
    expect(m.consume(q, 'a', 2, 'k', T0 + 999)).toEqual({ ...first, status: 'replayed' })
    expect(m.consume(q, 'a', 2, 'k', T0 + 1_000)).toMatchObject({ allowed: false, reason: 'limit' })
    expect(m.consume(q, 'a', 1, 'k', T0 + 1_000)).toMatchObject({ allowed: true, usage: 3 })
  })

  it('loads a missing counter before a consume (never before a refund), and counts nothing for an id without a quota', () => {
    const m = new QuotaModel()
    const q = spec({ loadUsage: () => 2, limit: (id) => (id === 'vip' ? null : 3) })
    expect(m.refund(q, 'a', 1, undefined, T0)).toMatchObject({ status: 'refused', reason: 'floor', usage: 0 })
    expect(m.events).toEqual(['onExceeded:a:1:false'])
    expect(m.consume(q, 'a', 1, undefined, T0)).toMatchObject({ allowed: true, usage: 3 })
    expect(m.events).toEqual(['onLoad:a:2', 'onConsume:a:1:true'])
    expect(m.consume(q, 'vip', 100, undefined, T0)).toMatchObject({ status: 'unlimited', allowed: true, usage: 0 })
  })

  it('consumeAll is all or nothing on both paths, and a saga never gives back a replayed step', () => {
    for (const atomic of [true, false]) {
      const m = new QuotaModel()
      const a = spec({ name: 'a', idempotencyTtlMs: 10_000 })
      const b = spec({ name: 'b', limit: () => 1 })
      const items = [
        { spec: a, id: 'x', cost: 2 },
        { spec: b, id: 'x', cost: 1 },
      ]
      expect(m.consumeAll(items, 'order', atomic, T0)).toMatchObject({ allowed: true })
      m.reset(b, 'x', T0)
      m.consume(b, 'x', 1, undefined, T0)
      // b's step record lapsed (1 s), a's did not (10 s): the saga replays a and is refused at b.
      const retry = m.consumeAll(items, 'order', atomic, T0 + 2_000)
      if (atomic) expect(retry).toMatchObject({ allowed: true, replayed: true })
      else expect(retry).toMatchObject({ allowed: false, refused: { index: 1, quota: 'b' } })
      expect(m.peek(a, 'x', T0 + 2_000)).toBe(2)
    }
  })

  it('gives each period window its own counter', () => {
    const m = new QuotaModel()
    const q = spec({ period: 'minute' })
    const start = windowStartAt('minute', T0 + 30_000)
    expect(m.consume(q, 'a', 3, undefined, T0 + 30_000)).toMatchObject({ usage: 3, resetAt: start + 60_000 })
    expect(m.consume(q, 'a', 3, undefined, start + 60_000)).toMatchObject({
      allowed: true,
      usage: 3,
      resetAt: start + 120_000,
    })
  })
})
