import type { CounterStore } from '@andromeda/core'
import { runStoreConformance, runStoreProperties } from '@andromeda/store-test-suite'
import { afterAll, describe, expect, it } from 'vitest'
import { requireService } from './helpers.js'
import { answers, SERVICE, sqlFixture } from './sql-fixture.js'

const available = requireService(await answers('postgres'), SERVICE.postgres)

describe.runIf(available)('keyv on @keyv/postgres', () => {
  // Tables of our own, dropped afterwards with the store's functions; no other table is touched.
  const fixture = sqlFixture('postgres')
  const store = {
    name: 'keyv (@keyv/postgres)',
    createStore: () => fixture.store(),
    destroyStore: async (s: CounterStore) => s.close?.(),
  }
  afterAll(() => fixture.drop())

  it('is globally atomic on @keyv/postgres', () => {
    expect(fixture.store().capabilities).toMatchObject({ shared: true, atomic: 'global' })
  })

  runStoreConformance(store)
  // Real time on a real database: fewer runs than the clocked Map suite.
  runStoreProperties({ ...store, numRuns: 25 })
})
