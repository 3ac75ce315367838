import type { CounterStore } from '@andromeda/core'
import { runStoreConformance, runStoreProperties } from '@andromeda/store-test-suite'
import { afterAll, describe, expect, it } from 'vitest'
import { requireService } from './helpers.js'
import { answers, SERVICE, sqlFixture } from './sql-fixture.js'

const available = requireService(await answers('mysql'), SERVICE.mysql)

describe.runIf(available)('keyv on @keyv/mysql (MariaDB or MySQL)', () => {
  // Tables of our own, dropped afterwards with the store's procedures; no other table is touched.
  const fixture = sqlFixture('mysql')
  const store = {
    name: 'keyv (@keyv/mysql)',
    createStore: () => fixture.store(),
    destroyStore: async (s: CounterStore) => s.close?.(),
    size: () => fixture.rows(),
  }
  afterAll(() => fixture.drop())

  it('is globally atomic on @keyv/mysql', () => {
    expect(fixture.store().capabilities).toMatchObject({ shared: true, atomic: 'global' })
  })

  it('a consume or refund of a live counter (one UPDATE) reports the lifetime the general path does', async () => {
    const store = fixture.store()
    const key = `{t${Math.random().toString(36).slice(2)}}:usage`
    const timed = `${key}:timed`
    expect(await store.apply([{ key, delta: 2, max: 10, ifMissing: 'create' }])).toEqual({
      ok: true,
      values: [2],
      ttlMs: [undefined],
    })
    expect(await store.apply([{ key, delta: 1, max: 10, ifMissing: 'report' }])).toEqual({
      ok: true,
      values: [3],
      ttlMs: [undefined],
    })
    expect(await store.apply([{ key, delta: -1, min: 0, ifMissing: 'report' }])).toEqual({
      ok: true,
      values: [2],
      ttlMs: [undefined],
    })
    await store.apply([{ key: timed, delta: 1, max: 10, ttlMs: 60_000, ifMissing: 'create' }])
    const again = await store.apply([{ key: timed, delta: 1, max: 10, ttlMs: 60_000, ifMissing: 'create' }])
    expect(again.ok && again.ttlMs?.[0]).toBeGreaterThan(59_000)
    expect(again.ok && again.ttlMs?.[0]).toBeLessThanOrEqual(60_000)
  })

  runStoreConformance(store)
  // Real time on a real database: fewer runs than the clocked Map suite.
  runStoreProperties({ ...store, numRuns: 25 })
})
