import type { CounterOp } from '@andromeda/core'
import { describe, expect } from 'vitest'
import { BAD_KEYS, BAD_TTLS, BAD_VALUES, type BadCall, expectEachRejected, show } from './bad-input.js'
import type { ConformanceOptions } from './conformance-options.js'
import { consume, refund } from './ops.js'
import { keyGroup, randomKey } from './random.js'
import { sleep, storeTest } from './store-test.js'

/** `op` with `field` replaced by `value` (a bad one), as a caller outside the engine might send it. */
const withField = (op: CounterOp, field: string, value: unknown): CounterOp => ({ ...op, [field]: value }) as CounterOp

/**
 * Ops with one bad field, each with the field the error must name. `holds`: include the fields
 * of holds and settles (a store run without the holds concern may not take them).
 */
function badOps(key: string, holds: boolean): [field: string, op: CounterOp][] {
  const add: CounterOp = { key, delta: 1, max: 10, ifMissing: 'create' }
  const giveBack: CounterOp = { key, delta: -1, min: 0, ifMissing: 'report' }
  const hold = (fields: object): CounterOp => ({ ...add, hold: { id: 'h1', holdMs: 60_000, ...fields } })
  const settle = (fields: object): CounterOp => ({
    key,
    delta: 0,
    ifMissing: 'report',
    settle: { id: 'h1', keep: 0, ...fields },
  })
  const cases: [string, CounterOp][] = [
    ...BAD_KEYS.map((v): [string, CounterOp] => ['key', withField(add, 'key', v)]),
    ...[...BAD_VALUES.filter((v) => v !== -1), -(2 ** 60)].map((v): [string, CounterOp] => [
      'delta',
      withField(add, 'delta', v),
    ]),
    ...BAD_VALUES.filter((v) => v !== undefined).map((v): [string, CounterOp] => ['max', withField(add, 'max', v)]),
    ...[1.5, Number.NaN, '0', null].map((v): [string, CounterOp] => ['min', withField(giveBack, 'min', v)]),
    ...BAD_TTLS.map((v): [string, CounterOp] => ['ttlMs', withField(add, 'ttlMs', v)]),
    ...['maybe', undefined, null].map((v): [string, CounterOp] => ['ifMissing', withField(add, 'ifMissing', v)]),
  ]
  if (!holds) return cases
  return [
    ...cases,
    ...['', 42, undefined].map((v): [string, CounterOp] => ['hold.id', hold({ id: v })]),
    ...[0, 1.5, undefined].map((v): [string, CounterOp] => ['hold.holdMs', hold({ holdMs: v })]),
    ['delta', { ...hold({}), delta: -1 }],
    ...['', 42].map((v): [string, CounterOp] => ['settle.id', settle({ id: v })]),
    ...[-1, 1.5, undefined].map((v): [string, CounterOp] => ['settle.keep', settle({ keep: v })]),
    ['delta', { ...settle({}), delta: 1 }],
    ['', { ...hold({}), settle: { id: 'h1', keep: 0 } }],
  ]
}

/**
 * `apply()` and the plain counter methods: bounds, missing counters, all or nothing, order, seed/set/delete, concurrency, large values, key isolation, bad arguments.
 *
 * One `describe` of independent cases: its length is the number of cases, each short and read on its own.
 */
export function applyTests(options: ConformanceOptions): void {
  const test = storeTest(options)

  // Only it(...) cases, one per behaviour: a long block that reads as a list.
  describe(`CounterStore contract: ${options.name}`, () => {
    test('apply() on a missing counter with ifMissing create starts from 0', async (store) => {
      const key = randomKey()
      expect(await store.apply([consume(key, 3, 10)])).toMatchObject({ ok: true, values: [3] })
      expect(await store.get(key)).toMatchObject({ value: 3 })
    })

    test('apply() past max is refused with limit and changes nothing', async (store) => {
      const key = randomKey()
      await store.apply([consume(key, 8, 10)])
      expect(await store.apply([consume(key, 3, 10)])).toMatchObject({
        ok: false,
        index: 0,
        reason: 'limit',
        values: [8],
      })
      expect((await store.get(key))?.value).toBe(8)
      expect(await store.apply([consume(key, 2, 10)])).toMatchObject({ ok: true, values: [10] })
    })

    test('apply() below min is refused with floor, whole, never clamped', async (store) => {
      const key = randomKey()
      await store.apply([consume(key, 1, 10)])
      expect(await store.apply([refund(key, 2)])).toMatchObject({ ok: false, index: 0, reason: 'floor', values: [1] })
      expect((await store.get(key))?.value).toBe(1)
      expect(await store.apply([refund(key, 1)])).toMatchObject({ ok: true, values: [0] })
    })

    test('apply() with ifMissing report on a missing counter reports it and creates nothing', async (store) => {
      const key = randomKey()
      expect(await store.apply([refund(key, 1)])).toMatchObject({ ok: false, index: 0, reason: 'missing' })
      expect(await store.apply([{ key, delta: 1, max: 5, ifMissing: 'report' }])).toMatchObject({
        ok: false,
        reason: 'missing',
      })
      expect(await store.get(key)).toBeUndefined()
    })

    test("apply() refuses for the bound before it reports another op's missing counter (no load could make it fit)", async (store) => {
      const [missing, full, other] = keyGroup(3) as [string, string, string]
      expect(await store.apply([{ key: full, delta: 2, max: 2, ifMissing: 'create' }])).toMatchObject({ ok: true })
      const refused = await store.apply([
        { key: missing, delta: 1, max: 5, ifMissing: 'report' },
        { key: full, delta: 1, max: 2, ifMissing: 'create' },
      ])
      expect(refused).toMatchObject({ ok: false, index: 1, reason: 'limit', values: [undefined, 2] })
      // Nothing is over its bound: the missing counter is reported, the first one in op order.
      const reported = await store.apply([
        { key: other, delta: 1, max: 5, ifMissing: 'create' },
        { key: missing, delta: 1, max: 5, ifMissing: 'report' },
        { key: missing, delta: 1, max: 5, ifMissing: 'report' },
        { key: full, delta: -1, min: 0, ifMissing: 'report' },
      ])
      expect(reported).toMatchObject({ ok: false, index: 1, reason: 'missing' })
      expect(await store.get(missing)).toBeUndefined()
      expect(await store.get(other)).toBeUndefined()
      expect(await store.get(full)).toMatchObject({ value: 2 })
    })

    test('apply() with delta 0 reads and never creates the counter', async (store) => {
      const key = randomKey()
      expect(await store.apply([consume(key, 0, 5, 60_000)])).toMatchObject({ ok: true, values: [0] })
      expect(await store.get(key)).toBeUndefined()
    })

    test('apply() over several keys is all or nothing', async (store) => {
      const [a, b] = keyGroup(2) as [string, string]
      await store.apply([consume(b, 5, 5)])
      expect(await store.apply([consume(a, 1, 5), consume(b, 1, 5)])).toMatchObject({
        ok: false,
        index: 1,
        reason: 'limit',
      })
      expect(await store.get(a)).toBeUndefined()
      expect((await store.get(b))?.value).toBe(5)
      expect(await store.apply([consume(a, 1, 5), refund(b, 2)])).toMatchObject({ ok: true, values: [1, 3] })
    })

    test('apply() with two ops on one key applies them in order, each seeing the previous', async (store) => {
      const [key] = keyGroup(1) as [string]
      expect(await store.apply([consume(key, 2, 3), consume(key, 2, 3)])).toMatchObject({
        ok: false,
        index: 1,
        reason: 'limit',
      })
      expect(await store.get(key)).toBeUndefined()
      expect(await store.apply([consume(key, 2, 3), consume(key, 1, 3)])).toMatchObject({ ok: true, values: [3, 3] })
    })

    test('seed() sets only if absent', async (store) => {
      const key = randomKey()
      expect(await store.seed(key, 7, 60_000)).toBe(true)
      expect(await store.seed(key, 1)).toBe(false)
      const snapshot = await store.get(key)
      expect(snapshot?.value).toBe(7)
      expect(snapshot?.ttlMs).toBeGreaterThan(0)
    })

    test('set() overwrites the value, keeps a live TTL and gives a new counter its TTL', async (store) => {
      const key = randomKey()
      await store.set(key, 4)
      expect(await store.get(key)).toEqual({ value: 4 })
      const timed = randomKey()
      await store.set(timed, 2, 60_000)
      const first = (await store.get(timed))?.ttlMs ?? 0
      expect(first).toBeGreaterThan(0)
      await sleep(20)
      await store.set(timed, 9, 60_000)
      const after = await store.get(timed)
      expect(after?.value).toBe(9)
      expect(after?.ttlMs).toBeLessThanOrEqual(first)
    })

    test('delete() removes a counter; deleting a missing one is fine', async (store) => {
      const key = randomKey()
      await store.apply([consume(key, 1, 10)])
      await store.delete(key)
      expect(await store.get(key)).toBeUndefined()
      await store.delete(key)
    })

    test('200 parallel applies on limit 50 grant exactly 50', async (store) => {
      const key = randomKey()
      const results = await Promise.all(Array.from({ length: 200 }, () => store.apply([consume(key, 1, 50)])))
      expect(results.filter((r) => r.ok)).toHaveLength(50)
      expect((await store.get(key))?.value).toBe(50)
    })

    test('values near 2^53 are exact and never pass the largest safe integer', async (store) => {
      const key = randomKey()
      const max = Number.MAX_SAFE_INTEGER
      expect(await store.seed(key, max - 2)).toBe(true)
      expect(await store.apply([consume(key, 1, max)])).toMatchObject({ ok: true, values: [max - 1] })
      expect(await store.apply([consume(key, 1, max)])).toMatchObject({ ok: true, values: [max] })
      expect(await store.apply([consume(key, 1, max)])).toMatchObject({ ok: false, reason: 'limit', values: [max] })
      expect(await store.get(key)).toEqual({ value: max })
    })

    test('seed() rejects a bad key, value or ttlMs with an InvalidArgumentError naming it, and creates nothing', async (store) => {
      const key = randomKey()
      await expectEachRejected([
        ...BAD_KEYS.map((v): BadCall => ['key', `seed(${show(v)}, 1)`, () => store.seed(v as string, 1)]),
        ...BAD_VALUES.map((v): BadCall => ['value', `seed(key, ${show(v)})`, () => store.seed(key, v as number)]),
        ...BAD_TTLS.map((v): BadCall => ['ttlMs', `seed(key, 1, ${show(v)})`, () => store.seed(key, 1, v as number)]),
      ])
      expect(await store.get(key)).toBeUndefined()
    })

    test('set() rejects a bad key, value or ttlMs with an InvalidArgumentError naming it, and changes nothing', async (store) => {
      const [live, missing] = keyGroup(2) as [string, string]
      await store.set(live, 3)
      await expectEachRejected([
        ...BAD_KEYS.map((v): BadCall => ['key', `set(${show(v)}, 1)`, () => store.set(v as string, 1)]),
        ...BAD_VALUES.flatMap((v): BadCall[] => [
          ['value', `set(live, ${show(v)})`, () => store.set(live, v as number)],
          ['value', `set(missing, ${show(v)})`, () => store.set(missing, v as number)],
        ]),
        ...BAD_TTLS.map(
          (v): BadCall => ['ttlMs', `set(missing, 1, ${show(v)})`, () => store.set(missing, 1, v as number)],
        ),
      ])
      expect(await store.get(live)).toEqual({ value: 3 })
      expect(await store.get(missing)).toBeUndefined()
    })

    test('get() and delete() reject a bad key with an InvalidArgumentError naming it', async (store) => {
      const key = randomKey()
      await store.set(key, 3)
      await expectEachRejected(
        BAD_KEYS.flatMap((v): BadCall[] => [
          ['key', `get(${show(v)})`, () => store.get(v as string)],
          ['key', `delete(${show(v)})`, () => store.delete(v as string)],
        ]),
      )
      expect(await store.get(key)).toEqual({ value: 3 })
    })

    test('apply() rejects a bad field of any op with an InvalidArgumentError naming it (ops[i].field), and changes nothing', async (store) => {
      const [counter, other] = keyGroup(2) as [string, string]
      await store.set(counter, 3)
      // The good op comes first: a store that checked ops only as it applied them would have changed it.
      await expectEachRejected(
        badOps(other, options.concerns?.holds !== false).map(([field, op]): BadCall => {
          const argument = field === '' ? 'ops[1]' : `ops[1].${field}`
          const shown = `apply([consume, ${JSON.stringify(op, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v))}])`
          return [argument, shown, () => store.apply([consume(counter, 1, 10), op])]
        }),
      )
      expect(await store.get(counter)).toEqual({ value: 3 })
      expect(await store.get(other)).toBeUndefined()
    })

    test('keys that differ only in odd characters never share a counter', async (store) => {
      const tag = randomKey('')
      const suffixes = ['a:b', 'a', 'b:', '{abc', 'x{}y{z}', 'ü', 'u\u0308', '😀', 'a'.repeat(10_240)]
      for (const [i, suffix] of suffixes.entries()) await store.apply([consume(`${tag}${suffix}`, i + 1, 1_000_000)])
      for (const [i, suffix] of suffixes.entries()) expect((await store.get(`${tag}${suffix}`))?.value).toBe(i + 1)
    })
  })
}
