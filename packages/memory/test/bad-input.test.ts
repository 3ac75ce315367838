import {
  type CounterStore,
  consumeAll,
  counterKey,
  createQuota,
  createUsageSync,
  InvalidArgumentError,
  type Quota,
} from '@andromeda/core'
import { createMemoryStore } from '@andromeda/memory'
import { describe, expect, it } from 'vitest'

// Every public function fed wrong types, out-of-range numbers, huge strings and
// prototype-polluting keys: each rejects with an InvalidArgumentError naming the argument,
// before any counter changes, or takes the value as an ordinary id that touches only its own
// counter.

const HUGE = 'x'.repeat(16_385)
/** Not a safe integer >= 0. */
const BAD_COUNTS: unknown[] = [
  -1,
  0.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  2 ** 53,
  '1',
  null,
  true,
  {},
  [],
  1n,
]
/** Not a positive integer of ms. */
const BAD_DURATIONS: unknown[] = [...BAD_COUNTS, 0]
/** Not a non-empty, well-formed string of at most 16,384 characters. */
const BAD_IDS: unknown[] = ['', 42, null, undefined, {}, [], Symbol('id'), HUGE, '\uD800', 'a\uDC00b']
const NOT_FUNCTIONS: unknown[] = [1, 'f', {}, null]
const NOT_OBJECTS: unknown[] = [null, 1, 'options', true]

/** Resolve to the InvalidArgumentError's `argument`, or fail the test with what happened. */
async function argumentOf(call: () => unknown): Promise<string> {
  try {
    await call()
  } catch (error) {
    if (InvalidArgumentError.isInstance(error)) return error.argument
    return `not an InvalidArgumentError: ${String(error)}`
  }
  return 'did not throw'
}

const label = (value: unknown) =>
  typeof value === 'string' && value.length > 20
    ? `string of ${value.length}`
    : typeof value === 'bigint'
      ? `${value}n`
      : String(value)

/** A fresh store and quota with one counter at 2, to prove a rejected call changed nothing. */
async function fixture() {
  const store = createMemoryStore()
  const quota = createQuota({ name: 'q', store, limit: 10 })
  await quota.consume('sentinel', 2)
  const unchanged = async () => {
    expect((await quota.get('sentinel')).usage).toBe(2)
  }
  return { store, quota, unchanged }
}

describe('createQuota rejects bad options with InvalidArgumentError naming the option', () => {
  const store = createMemoryStore()
  const base = { name: 'q', store, limit: 5 }
  const cases: [string, unknown][] = [
    ...NOT_OBJECTS.map((v): [string, unknown] => ['options', v]),
    ...BAD_IDS.filter((v) => v !== HUGE).map((v): [string, unknown] => ['name', { ...base, name: v }]),
    ['name', { ...base, name: 'n'.repeat(257) }],
    ...[undefined, null, {}, { apply: () => {} }, 'redis://x'].map((v): [string, unknown] => [
      'store',
      { ...base, store: v },
    ]),
    ...BAD_COUNTS.filter((v) => v !== null).map((v): [string, unknown] => ['limit', { ...base, limit: v }]),
    ['limit', { name: 'q', store }],
    ...BAD_DURATIONS.map((v): [string, unknown] => ['ttlMs', { ...base, ttlMs: v }]),
    ...BAD_DURATIONS.map((v): [string, unknown] => ['limitCacheTtlMs', { ...base, limitCacheTtlMs: v }]),
    ...BAD_DURATIONS.map((v): [string, unknown] => ['idempotencyTtlMs', { ...base, idempotencyTtlMs: v }]),
    ...['second', 'Month', '', 1, '__proto__', 'toString'].map((v): [string, unknown] => [
      'period',
      { ...base, period: v },
    ]),
    ...NOT_FUNCTIONS.map((v): [string, unknown] => ['loadUsage', { ...base, loadUsage: v }]),
    ...NOT_FUNCTIONS.map((v): [string, unknown] => ['cost', { ...base, cost: v }]),
    ...NOT_FUNCTIONS.map((v): [string, unknown] => ['clock', { ...base, clock: v }]),
    ...['yes', '', 'THROW', 'toString', 1].map((v): [string, unknown] => [
      'onStoreError',
      { ...base, onStoreError: v },
    ]),
    ...BAD_DURATIONS.map((v): [string, unknown] => ['lock.ttlMs', { ...base, lock: { ttlMs: v } }]),
    ...BAD_COUNTS.map((v): [string, unknown] => ['lock.retries', { ...base, lock: { retries: v } }]),
    ...BAD_COUNTS.map((v): [string, unknown] => ['lock.retryDelayMs', { ...base, lock: { retryDelayMs: v } }]),
    ...[1, 'hooks'].map((v): [string, unknown] => ['hooks', { ...base, hooks: v }]),
    ['hooks.onConsume', { ...base, hooks: { onConsume: 'log' } }],
    // A JSON body's "__proto__" is an own key: it never supplies an option (it is refused as an
    // unknown one), and a hook under it is checked.
    ['__proto__', JSON.parse('{"name":"q","__proto__":{"limit":5}}')],
    ['hooks.__proto__', { ...base, hooks: JSON.parse('{"__proto__":{"onConsume":1}}') }],
  ]

  it.each(
    cases.map(([argument, options]) => [
      argument,
      label(
        options && typeof options === 'object'
          ? JSON.stringify(options, (k, v) => (k === 'store' ? '<store>' : typeof v === 'bigint' ? `${v}n` : v))
          : options,
      ),
      options,
    ]),
  )('%s: %s', async (argument, _shown, options) => {
    const withStore =
      options && typeof options === 'object' && !('store' in options) && argument !== 'store'
        ? { ...options, store }
        : options
    expect(await argumentOf(() => createQuota(withStore as never))).toBe(argument)
  })

  it('leaves Object.prototype untouched', () => {
    const before = Object.getOwnPropertyNames(Object.prototype).sort()
    for (const options of cases.map(([, o]) => o)) {
      try {
        createQuota(options as never)
      } catch {}
    }
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(before)
    expect(({} as Record<string, unknown>).limit).toBeUndefined()
    expect(({} as Record<string, unknown>).onConsume).toBeUndefined()
  })
})

describe('quota methods reject bad arguments with InvalidArgumentError and change nothing', () => {
  type Call = [string, string, (quota: Quota) => unknown]
  const calls: Call[] = [
    ...BAD_IDS.flatMap((v): Call[] => [
      ['id', `consume(${label(v)})`, (q) => q.consume(v as string)],
      ['id', `refund(${label(v)})`, (q) => q.refund(v as string)],
      ['id', `get(${label(v)})`, (q) => q.get(v as string)],
      ['id', `set(${label(v)}, 1)`, (q) => q.set(v as string, 1)],
      ['id', `reset(${label(v)})`, (q) => q.reset(v as string)],
      ['id', `transact(${label(v)})`, (q) => q.transact(v as string, 1, () => 1)],
    ]),
    ...BAD_COUNTS.flatMap((v): Call[] => [
      ['cost', `consume(id, ${label(v)})`, (q) => q.consume('sentinel', v as number)],
      ['cost', `refund(id, ${label(v)})`, (q) => q.refund('sentinel', v as number)],
      ['cost', `transact(id, ${label(v)})`, (q) => q.transact('sentinel', v as number, () => 1)],
      ['usage', `set(id, ${label(v)})`, (q) => q.set('sentinel', v as number)],
    ]),
    ...[1, '', HUGE, {}, '\uD800'].flatMap((v): Call[] => [
      [
        'idempotencyKey',
        `consume idempotencyKey ${label(v)}`,
        (q) => q.consume('sentinel', 1, { idempotencyKey: v as string }),
      ],
      [
        'idempotencyKey',
        `refund idempotencyKey ${label(v)}`,
        (q) => q.refund('sentinel', 1, { idempotencyKey: v as string }),
      ],
      [
        'idempotencyKey',
        `transact idempotencyKey ${label(v)}`,
        (q) => q.transact('sentinel', 1, () => 1, { idempotencyKey: v as string }),
      ],
    ]),
    ...NOT_FUNCTIONS.map(
      (v): Call => ['fn', `transact(id, 1, ${label(v)})`, (q) => q.transact('sentinel', 1, v as never)],
    ),
    ...NOT_OBJECTS.flatMap((v): Call[] => [
      ['options', `consume(id, 1, ${label(v)})`, (q) => q.consume('sentinel', 1, v as never)],
      ['options', `refund(id, 1, ${label(v)})`, (q) => q.refund('sentinel', 1, v as never)],
      ['options', `get(id, ${label(v)})`, (q) => q.get('sentinel', v as never)],
      ['options', `set(id, 1, ${label(v)})`, (q) => q.set('sentinel', 1, v as never)],
      ['options', `reset(id, ${label(v)})`, (q) => q.reset('sentinel', v as never)],
      ['options', `transact(id, 1, fn, ${label(v)})`, (q) => q.transact('sentinel', 1, () => 1, v as never)],
    ]),
    ...['abort', {}, { aborted: false }].flatMap((v): Call[] => [
      ['signal', `consume signal ${label(v)}`, (q) => q.consume('sentinel', 1, { signal: v as never })],
      ['signal', `refund signal ${label(v)}`, (q) => q.refund('sentinel', 1, { signal: v as never })],
      ['signal', `get signal ${label(v)}`, (q) => q.get('sentinel', { signal: v as never })],
      ['signal', `transact signal ${label(v)}`, (q) => q.transact('sentinel', 1, () => 1, { signal: v as never })],
    ]),
  ]

  it.each(calls)('%s: %s', async (argument, _shown, call) => {
    const { quota, unchanged } = await fixture()
    expect(await argumentOf(() => call(quota))).toBe(argument)
    await unchanged()
  })

  it('function-valued options returning bad values are rejected per call, before the store is touched', async () => {
    const store = createMemoryStore()
    for (const bad of BAD_COUNTS) {
      // A limit function may return null (no quota for this id); any other non-count is refused.
      const limited = createQuota({ name: 'l', store, limit: () => (bad === null ? -1 : bad) as number })
      expect(await argumentOf(() => limited.consume('a'))).toBe('limit')
      const costed = createQuota({ name: 'c', store, limit: 5, cost: () => bad as number })
      expect(await argumentOf(() => costed.consume('a'))).toBe('cost')
    }
    for (const bad of BAD_DURATIONS) {
      const timed = createQuota({ name: 't', store, limit: 5, ttlMs: () => bad as number })
      expect(await argumentOf(() => timed.consume('a'))).toBe('ttlMs')
    }
    for (const name of ['l', 'c', 't']) expect(await store.get(counterKey(name, 'a'))).toBeUndefined()
  })
})

describe('consumeAll rejects bad items with InvalidArgumentError naming the item, and changes nothing', () => {
  type Case = [string, (quota: Quota) => unknown]
  const cases: Case[] = [
    ['items', () => consumeAll([])],
    ...NOT_OBJECTS.map((v): Case => ['items', () => consumeAll(v as never)]),
    ['items[0].quota', () => consumeAll([{ quota: {} as never, id: 'a' }])],
    ['items[0].quota', () => consumeAll([null as never])],
    [
      'items[1].quota',
      (q) =>
        consumeAll([
          { quota: q, id: 'sentinel' },
          { quota: { name: 'fake', consume: () => ({}) } as never, id: 'a' },
        ]),
    ],
    ...BAD_IDS.map(
      (v): Case => [
        'items[1].id',
        (q) =>
          consumeAll([
            { quota: q, id: 'sentinel' },
            { quota: q, id: v as string },
          ]),
      ],
    ),
    ...BAD_COUNTS.map(
      (v): Case => [
        'items[1].cost',
        (q) =>
          consumeAll([
            { quota: q, id: 'sentinel' },
            { quota: q, id: 'b', cost: v as number },
          ]),
      ],
    ),
    ...[1, ''].map(
      (v): Case => [
        'idempotencyKey',
        (q) => consumeAll([{ quota: q, id: 'sentinel' }], { idempotencyKey: v as string }),
      ],
    ),
    ...NOT_OBJECTS.map((v): Case => ['options', (q) => consumeAll([{ quota: q, id: 'sentinel' }], v as never)]),
    ['signal', (q) => consumeAll([{ quota: q, id: 'sentinel' }], { signal: 'abort' as never })],
  ]
  it.each(cases.map(([argument, call], i) => [argument, i, call] as const))(
    '%s (case %s)',
    async (argument, _i, call) => {
      const { quota, unchanged } = await fixture()
      expect(await argumentOf(() => call(quota))).toBe(argument)
      await unchanged()
    },
  )
})

describe('createUsageSync and createMemoryStore reject bad options with InvalidArgumentError', () => {
  const quota = createQuota({ name: 'q', store: createMemoryStore(), limit: 5 })
  const base = { quota, ids: () => ['a'], persist: () => {}, intervalMs: 1000 }
  const cases: [string, () => unknown][] = [
    ...NOT_OBJECTS.map((v): [string, () => unknown] => ['quota', () => createUsageSync(v as never)]),
    ['quota', () => createUsageSync({ ...base, quota: {} as never })],
    ...NOT_FUNCTIONS.map((v): [string, () => unknown] => ['ids', () => createUsageSync({ ...base, ids: v as never })]),
    ...NOT_FUNCTIONS.map((v): [string, () => unknown] => [
      'persist',
      () => createUsageSync({ ...base, persist: v as never }),
    ]),
    ...[...BAD_DURATIONS, 2 ** 31].map((v): [string, () => unknown] => [
      'intervalMs',
      () => createUsageSync({ ...base, intervalMs: v as number }),
    ]),
    ...[1, 'log', {}].map((v): [string, () => unknown] => [
      'onError',
      () => createUsageSync({ ...base, onError: v as never }),
    ]),
    ...[0, -1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, '10', null].map((v): [string, () => unknown] => [
      'max',
      () => createMemoryStore({ max: v as number }),
    ]),
    ...NOT_FUNCTIONS.map((v): [string, () => unknown] => ['clock', () => createMemoryStore({ clock: v as never })]),
    ...NOT_FUNCTIONS.map((v): [string, () => unknown] => ['onEvict', () => createMemoryStore({ onEvict: v as never })]),
    ...[1, 'memory', true].map((v): [string, () => unknown] => ['options', () => createMemoryStore(v as never)]),
  ]
  it.each(cases.map(([argument, call], i) => [argument, i, call] as const))(
    '%s (case %s)',
    async (argument, _i, call) => {
      expect(await argumentOf(call)).toBe(argument)
    },
  )
})

describe('odd ids are ordinary ids: each touches only its own counter', () => {
  const ODD_IDS = [
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    'prototype',
    'a',
    'a}:usage',
    '{a}:usage',
    'a:usage',
    '{other:tenant}',
    'other:tenant',
    '{other}',
    'tenant}',
    '%7B',
    '%',
    ':',
    '{',
    '}',
    ' ',
    '\u0000',
    'é',
    'e\u0301',
    '😀',
    'x'.repeat(16_384),
  ]

  it('distinct ids never share a counter, and a victim tenant is never reached', async () => {
    const store: CounterStore = createMemoryStore()
    const quota = createQuota({ name: 'tenant', store, limit: 1_000 })
    const other = createQuota({ name: 'other', store, limit: 1_000 })
    const colon = createQuota({ name: 'tenant:a', store, limit: 1_000 })
    await other.consume('tenant', 500)
    await colon.consume('usage', 400)
    for (const [i, id] of ODD_IDS.entries()) expect((await quota.consume(id, i + 1)).usage).toBe(i + 1)
    for (const [i, id] of ODD_IDS.entries()) expect((await quota.get(id)).usage).toBe(i + 1)
    expect((await other.get('tenant')).usage).toBe(500)
    expect((await colon.get('usage')).usage).toBe(400)
    for (const [i, id] of ODD_IDS.entries()) expect((await quota.refund(id, i + 1)).usage).toBe(0)
    expect((await other.get('tenant')).usage).toBe(500)
    expect(({} as Record<string, unknown>).usage).toBeUndefined()
  })

  it('set() and reset() on an odd id touch only that id', async () => {
    const quota = createQuota({ name: 'tenant', store: createMemoryStore(), limit: 10 })
    for (const id of ODD_IDS) await quota.set(id, 3)
    await quota.reset('__proto__')
    await quota.reset('{a}:usage')
    for (const id of ODD_IDS) {
      expect((await quota.get(id)).usage, id.slice(0, 20)).toBe(id === '__proto__' || id === '{a}:usage' ? 0 : 3)
    }
  })

  it('odd idempotency keys and quota names are ordinary too', async () => {
    const store = createMemoryStore()
    const names = ['__proto__', 'constructor', 'a:b', 'a', '{a}', 'a}']
    const quotas = names.map((name) => createQuota({ name, store, limit: 10 }))
    for (const [i, quota] of quotas.entries()) await quota.consume('b', i + 1, { idempotencyKey: '__proto__' })
    for (const [i, quota] of quotas.entries()) {
      expect(await quota.consume('b', i + 1, { idempotencyKey: '__proto__' })).toMatchObject({
        status: 'replayed',
        usage: i + 1,
      })
      expect(await quota.consume('b', 1, { idempotencyKey: 'constructor' })).toMatchObject({ usage: i + 2 })
    }
  })
})
