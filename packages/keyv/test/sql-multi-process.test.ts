import { rmSync } from 'node:fs'
import { counterKey, createQuota } from '@andromeda/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFixture, runChildren } from './children.js'
import { POSTGRES_URL, requireService } from './helpers.js'
import { answers, type Dialect, MYSQL_URL, SERVICE, sqlFixture } from './sql-fixture.js'

interface Tally {
  allowed: number
  refused: number
  errors: number
  firstError?: string
  loads: number
  atomic: string
}

const available: Record<Dialect, boolean> = {
  postgres: requireService(await answers('postgres'), SERVICE.postgres),
  mysql: requireService(await answers('mysql'), SERVICE.mysql),
}

let outDir: string
beforeAll(async () => {
  outDir = await bundleFixture('sql-consumer')
}, 60_000)
afterAll(() => {
  if (outDir) rmSync(outDir, { recursive: true, force: true })
})

describe.each(['postgres', 'mysql'] as const)('%s across processes', (dialect) => {
  const fixture = sqlFixture(dialect)
  afterAll(() => fixture.drop())
  const env = (quota: string, load = '') => ({
    DIALECT: dialect,
    URI: dialect === 'postgres' ? POSTGRES_URL : MYSQL_URL,
    TABLE: fixture.table,
    KEYV_TABLE: fixture.keyvTable,
    QUOTA: quota,
    COUNT: '500',
    LIMIT: '1000',
    LOAD: load,
  })
  const sum = (tallies: Tally[]) => ({
    allowed: tallies.reduce((n, t) => n + t.allowed, 0),
    refused: tallies.reduce((n, t) => n + t.refused, 0),
    errors: tallies.reduce((n, t) => n + t.errors, 0),
  })

  it.runIf(available[dialect])(
    '4 processes x 500 concurrent consumes on limit 1000 grant exactly 1000',
    async () => {
      const tallies = await runChildren<Tally>(
        outDir,
        'sql-consumer',
        Array.from({ length: 4 }, () => env('voucher')),
      )
      console.info(`${dialect}, 4 x 500 consumes on limit 1000: ${JSON.stringify(tallies)}`)
      expect(tallies.every((t) => t.atomic === 'global')).toBe(true)
      expect(sum(tallies)).toEqual({ allowed: 1000, refused: 1000, errors: 0 })
      const quota = createQuota({ name: 'voucher', store: fixture.store(), limit: 1000 })
      expect((await quota.get('flash-sale')).usage).toBe(1000)
    },
    120_000,
  )

  it.runIf(available[dialect])(
    'the same with loadUsage returning 400: exactly 600 granted, loadUsage at most once per process',
    async () => {
      const tallies = await runChildren<Tally>(
        outDir,
        'sql-consumer',
        Array.from({ length: 4 }, () => env('loaded', '400')),
      )
      console.info(`${dialect}, 4 x 500 consumes on limit 1000 from 400 loaded: ${JSON.stringify(tallies)}`)
      expect(sum(tallies)).toEqual({ allowed: 600, refused: 1400, errors: 0 })
      expect(tallies.every((t) => t.loads <= 1)).toBe(true)
      const store = fixture.store()
      expect((await store.get(counterKey('loaded', 'flash-sale')))?.value).toBe(1000)
    },
    120_000,
  )
})
