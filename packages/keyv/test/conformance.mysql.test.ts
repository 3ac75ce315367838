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
  }
  afterAll(() => fixture.drop())

  it('is globally atomic on @keyv/mysql', () => {
    expect(fixture.store().capabilities).toMatchObject({ shared: true, atomic: 'global' })
  })

  runStoreConformance(store)
  // Real time on a real database: fewer runs than the clocked Map suite.
  runStoreProperties({ ...store, numRuns: 25 })
})
