import type { CounterOp } from '@andromeda/core'
import { StoreError } from '@andromeda/core'
import Keyv from 'keyv'
import { describe, expect, it } from 'vitest'
import { createKeyvStore } from '../src/index.js'
import { FlakyAdapter } from './flaky-adapter.js'

const reserve = (key: string, units: number, id: string, holdMs: number, ttlMs?: number): CounterOp => ({
  key,
  delta: units,
  max: 10,
  ifMissing: 'create',
  hold: { id, holdMs },
  ...(ttlMs === undefined ? {} : { ttlMs }),
})
const settle = (key: string, id: string, keep: number): CounterOp => ({
  key,
  delta: 0,
  ifMissing: 'create',
  settle: { id, keep },
})
const consume = (key: string, units: number): CounterOp => ({ key, delta: units, max: 10, ifMissing: 'create' })

/** A store on a Map-like adapter that records reads and TTLs, on a clock the test moves. */
function setup(timeoutMs = 200) {
  const adapter = new FlakyAdapter()
  const keyv = new Keyv({ store: adapter })
  let now = Date.now()
  const store = createKeyvStore({ keyv, commandTimeoutMs: timeoutMs, shared: false, clock: () => now })
  /** The entry stored at an engine key, as this package wrote it (undefined: none). */
  const entry = (key: string) => {
    const raw = adapter.map.get(`keyv:${key}`)
    return raw === undefined ? undefined : JSON.parse(raw as string).value
  }
  return {
    adapter,
    store,
    entry,
    now: () => now,
    advance: (ms: number) => {
      now += ms
    },
  }
}

describe('keyv process-atomic path: holds', () => {
  it("a counter's holds are one entry next to it, expiring with it; settling leaves a mark for the hold's length", async () => {
    const { store, entry, now } = setup()
    const at = now()
    await store.apply([reserve('k', 3, 'h1', 5_000, 60_000)])
    await store.apply([reserve('k', 2, 'h2', 7_000)])
    expect(entry('k')).toEqual({ type: 'counter', value: 5, expiresAt: at + 60_000, held: true })
    expect(entry('k:holds')).toEqual({
      type: 'holds',
      holds: [
        ['h1', 3, at + 5_000, 5_000],
        ['h2', 2, at + 7_000, 7_000],
      ],
      expiresAt: at + 60_000,
    })

    expect(await store.apply([settle('k', 'h1', 1)])).toMatchObject({ ok: true, values: [3] })
    expect(entry('k:holds').holds).toEqual([['h2', 2, at + 7_000, 7_000]])
    expect(entry('k:settled:h1')).toEqual({ type: 'settled', expiresAt: at + 5_000 })

    // The last hold settled: the entry goes and the counter no longer says it has holds.
    expect(await store.apply([settle('k', 'h2', 2)])).toMatchObject({ ok: true, values: [3] })
    expect(entry('k:holds')).toBeUndefined()
    expect(entry('k')).toEqual({ type: 'counter', value: 3, expiresAt: at + 60_000 })
  })

  it('the adapter is given the TTLs too: holds with their counter, a settled mark for the hold length', async () => {
    const { adapter, store } = setup()
    await store.apply([reserve('k', 3, 'h1', 5_000, 60_000), reserve('k', 1, 'h2', 5_000)])
    await store.apply([settle('k', 'h1', 3)])
    // Each hint is the lifetime plus the 1 s of slack every entry of this path gets.
    expect(adapter.ttls.get('keyv:k')).toBe(61_000)
    expect(adapter.ttls.get('keyv:k:holds')).toBe(61_000)
    expect(adapter.ttls.get('keyv:k:settled:h1')).toBe(6_000)
  })

  it('a new hold that fits keeps the expired ones counted (as every store does); a read gives them back', async () => {
    const { store, entry, advance, now } = setup()
    await store.apply([consume('k', 1)])
    await store.apply([reserve('k', 4, 'abandoned', 1_000)])
    advance(1_000)
    expect(await store.apply([reserve('k', 2, 'fresh', 1_000)])).toMatchObject({ ok: true, values: [7] })
    expect(entry('k:holds').holds).toContainEqual(['fresh', 2, now() + 1_000, 1_000])
    expect(await store.get('k')).toMatchObject({ value: 3 })
    expect(entry('k:holds').holds).toEqual([['fresh', 2, now() + 1_000, 1_000]])
  })

  it('settling a live hold keeps the other expired ones counted (as every store does); settling a lapsed one gives them back', async () => {
    const { store, advance } = setup()
    await store.apply([reserve('k', 2, 'old', 1_000)])
    advance(500)
    await store.apply([reserve('k', 3, 'live', 60_000)])
    advance(1_000)
    // 'old' lapsed: still counted until it matters.
    expect(await store.apply([settle('k', 'live', 3)])).toMatchObject({ ok: true, values: [5] })
    expect(await store.apply([settle('k', 'old', 2)])).toMatchObject({ ok: false, reason: 'hold', values: [3] })
    expect(await store.get('k')).toMatchObject({ value: 3 })
  })

  it('a new hold that would be refused gives the expired ones back first, then fits', async () => {
    const { store, advance } = setup()
    await store.apply([reserve('k', 4, 'abandoned', 1_000)])
    advance(1_000)
    expect(await store.apply([{ ...reserve('k', 8, 'fresh', 1_000), max: 10 }])).toMatchObject({
      ok: true,
      values: [8],
    })
  })

  it('a consume or refund that fits never reads the holds; one that would be refused does, then fits', async () => {
    const { adapter, store, advance } = setup()
    await store.apply([reserve('k', 6, 'h', 1_000)])
    adapter.reads.length = 0
    await store.apply([consume('k', 4)])
    await store.apply([{ key: 'k', delta: -1, min: 0, ifMissing: 'report' }])
    expect(adapter.reads).toEqual(['keyv:k', 'keyv:k'])
    advance(1_000)
    expect(await store.apply([consume('k', 2)])).toMatchObject({ ok: true, values: [5] })
    expect(adapter.reads).toContain('keyv:k:holds')
  })

  it('a refusal still keeps the give-back of the expired holds it read', async () => {
    const { store, entry, advance } = setup()
    await store.apply([consume('k', 5)])
    await store.apply([reserve('k', 3, 'h', 1_000)])
    advance(1_000)
    expect(await store.apply([consume('k', 6)])).toMatchObject({ ok: false, reason: 'limit', values: [5] })
    expect(entry('k')).toEqual({ type: 'counter', value: 5 })
    expect(entry('k:holds')).toBeUndefined()
  })

  it('get() writes back the give-back of expired holds', async () => {
    const { store, entry, advance } = setup()
    await store.apply([reserve('k', 3, 'h1', 1_000), reserve('k', 2, 'h2', 5_000)])
    advance(1_000)
    expect(await store.get('k')).toEqual({ value: 2 })
    expect(entry('k')).toEqual({ type: 'counter', value: 2, held: true })
    expect(entry('k:holds').holds.map((hold: unknown[]) => hold[0])).toEqual(['h2'])
  })

  it('delete() removes the holds entry with the counter', async () => {
    const { store, entry } = setup()
    await store.apply([reserve('k', 3, 'h', 5_000)])
    await store.delete('k')
    expect(entry('k')).toBeUndefined()
    expect(entry('k:holds')).toBeUndefined()
  })

  it('a counter created anew ignores a holds entry left behind, and overwrites it', async () => {
    const { adapter, store, entry, advance } = setup()
    await store.apply([reserve('k', 3, 'old', 1_000)])
    // As if the counter had gone while its holds entry stayed (an adapter that evicts).
    adapter.map.delete('keyv:k')
    await store.apply([consume('k', 2)])
    await store.apply([reserve('k', 2, 'new', 1_000)])
    expect(entry('k:holds').holds.map((hold: unknown[]) => hold[0])).toEqual(['new'])
    advance(1_000)
    // Only the new hold comes back: 4 - 2, never 4 - 5 clamped to 0.
    expect(await store.get('k')).toEqual({ value: 2 })
  })
})

describe('keyv process-atomic path: holds under concurrency', () => {
  it('100 concurrent holds on limit 40 hold exactly 40; abandoned ones come back; settled ones stay', async () => {
    const { store, advance } = setup()
    const holds = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        store.apply([
          {
            key: 'k',
            delta: 1,
            max: 40,
            ifMissing: 'create',
            hold: { id: `h${i}`, holdMs: i % 2 === 0 ? 60_000 : 2_000 },
          },
        ]),
      ),
    )
    const held = holds.flatMap((result, i) => (result.ok ? [i] : []))
    expect(held).toHaveLength(40)
    expect(await store.get('k')).toEqual({ value: 40 })
    // Settle the long holds concurrently, keeping every unit; let the short ones expire.
    const long = held.filter((i) => i % 2 === 0)
    const settled = await Promise.all(long.map((i) => store.apply([settle('k', `h${i}`, 1)])))
    expect(settled.every((result) => result.ok)).toBe(true)
    advance(2_000)
    const refill = await Promise.all(
      Array.from({ length: 60 }, () => store.apply([{ key: 'k', delta: 1, max: 40, ifMissing: 'create' }])),
    )
    expect(refill.filter((result) => result.ok)).toHaveLength(40 - long.length)
    expect(await store.get('k')).toEqual({ value: 40 })
  })
})

describe('keyv process-atomic path: holds under failing writes', () => {
  it('a hold whose holds entry cannot be saved is rejected and leaves neither units nor a hold', async () => {
    const { adapter, store, entry } = setup()
    adapter.setMode = 'throw'
    adapter.failSetNumber = 2 // the counter is written, its holds entry fails
    await expect(store.apply([reserve('k', 3, 'h', 5_000)])).rejects.toSatisfy(StoreError.isInstance)
    adapter.setMode = 'ok'
    expect(await store.get('k')).toBeUndefined()
    expect(entry('k:holds')).toBeUndefined()
    expect(await store.apply([settle('k', 'h', 0)])).toMatchObject({ ok: false, reason: 'hold' })
  })

  it('a settle whose counter cannot be saved puts the hold back, so it can be settled again', async () => {
    const { adapter, store, entry } = setup()
    await store.apply([reserve('k', 3, 'h1', 5_000)]) // sets 1 and 2
    await store.apply([reserve('k', 2, 'h2', 5_000)]) // sets 3 and 4
    adapter.setMode = 'throw'
    adapter.failSetNumber = 6 // the holds entry (5) is written first, then the counter (6) fails
    await expect(store.apply([settle('k', 'h1', 0)])).rejects.toSatisfy(StoreError.isInstance)
    adapter.setMode = 'ok'
    expect(entry('k:holds').holds.map((hold: unknown[]) => hold[0])).toEqual(['h1', 'h2'])
    expect(entry('k:settled:h1')).toBeUndefined()
    expect(await store.apply([settle('k', 'h1', 0)])).toMatchObject({ ok: true, values: [2] })
  })

  it('a settle whose mark cannot be saved puts back the counter and the hold', async () => {
    const { adapter, store, entry } = setup()
    await store.apply([reserve('k', 3, 'h', 5_000)]) // sets 1 and 2
    adapter.setMode = 'throw'
    adapter.failSetNumber = 4 // the holds entry is deleted, the counter written (3), the mark fails (4)
    await expect(store.apply([settle('k', 'h', 1)])).rejects.toSatisfy(StoreError.isInstance)
    adapter.setMode = 'ok'
    expect(entry('k')).toEqual({ type: 'counter', value: 3, held: true })
    expect(entry('k:holds').holds.map((hold: unknown[]) => hold[0])).toEqual(['h'])
    expect(await store.apply([settle('k', 'h', 1)])).toMatchObject({ ok: true, values: [1] })
  })

  it('holds on two counters whose second counter cannot be saved put the first counter and its holds back', async () => {
    const { adapter, store, entry } = setup()
    await store.apply([reserve('{g}:a', 1, 'old', 5_000)]) // sets 1 and 2
    adapter.setMode = 'throw'
    adapter.failSetNumber = 5 // a's counter (3) and holds (4) are written, b's counter (5) fails
    await expect(store.apply([reserve('{g}:a', 2, 'x', 5_000), reserve('{g}:b', 2, 'x', 5_000)])).rejects.toSatisfy(
      StoreError.isInstance,
    )
    adapter.setMode = 'ok'
    expect(await store.get('{g}:a')).toEqual({ value: 1 })
    expect(entry('{g}:a:holds').holds.map((hold: unknown[]) => hold[0])).toEqual(['old'])
    expect(await store.get('{g}:b')).toBeUndefined()
    expect(await store.apply([settle('{g}:a', 'x', 0)])).toMatchObject({ ok: false, reason: 'hold' })
  })
})
