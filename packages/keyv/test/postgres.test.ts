import type { CounterStore } from '@andromeda/core'
import { runStoreConformance, runStoreProperties } from '@andromeda/store-test-suite'
import KeyvPostgres from '@keyv/postgres'
import Keyv from 'keyv'
import pg from 'pg'
import { afterAll, describe } from 'vitest'
import { createKeyvStore } from '../src/index.js'
import { POSTGRES_URL, postgresAnswers, randomNamespace, requireService } from './helpers.js'

const available = requireService(await postgresAnswers(), 'PostgreSQL at 127.0.0.1:5432 (database test)')

describe.runIf(available)('keyv on @keyv/postgres', () => {
  // A table of our own, dropped afterwards; no other table is touched.
  const table = randomNamespace('keyv').replaceAll('-', '_')
  const adapter = available ? new KeyvPostgres({ uri: POSTGRES_URL, table }) : undefined
  const keyv = new Keyv({ store: adapter, namespace: 'andromeda' })
  const store = {
    name: 'keyv (@keyv/postgres)',
    createStore: () => createKeyvStore({ keyv }),
    destroyStore: async (s: CounterStore) => s.close?.(),
  }

  afterAll(async () => {
    const admin = new pg.Client({ connectionString: POSTGRES_URL })
    await admin.connect()
    await admin.query(`DROP TABLE IF EXISTS public.${table}`)
    await admin.end()
    await adapter?.disconnect()
  })

  runStoreConformance(store)
  // Real time on a real database: fewer runs than the clocked Map suite.
  runStoreProperties({ ...store, numRuns: 25 })
})
