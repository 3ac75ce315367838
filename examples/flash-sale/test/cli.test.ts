import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { integerFlag, ratioFlag, readFlags, UsageError } from '../src/cli.js'
import { startServer } from '../src/server.js'
import { DATABASE_URL, servicesAvailable } from './helpers.js'

const services = await servicesAvailable()
if (!services.ok) console.warn(`the start-up test skipped (set CI=true to require it): ${services.reason}`)

describe('the commands read their flags strictly', () => {
  it.each(['', '0x10', '1e3', '0b11', '1.5', ' 7', 'abc', '-1'])(
    'an integer flag given "%s" is a usage error naming it',
    (raw) => {
      expect(() => integerFlag({ limit: raw }, 'limit', 100, 0)).toThrow(UsageError)
      expect(() => integerFlag({ limit: raw }, 'limit', 100, 0)).toThrow(/--limit/)
    },
  )

  it('an integer flag takes decimal digits, and its fallback when absent', () => {
    expect(integerFlag({ limit: '42' }, 'limit', 100, 0)).toBe(42)
    expect(integerFlag({}, 'limit', 100, 0)).toBe(100)
  })

  it.each(['', '2', '-0.1', '0x1', '1e-1', 'abc'])('a ratio flag given "%s" is a usage error naming it', (raw) => {
    expect(() => ratioFlag({ 'unclaim-ratio': raw }, 'unclaim-ratio', 0.2)).toThrow(/--unclaim-ratio/)
  })

  it('a ratio flag takes 0, 1 and decimals between', () => {
    for (const [raw, n] of [
      ['0', 0],
      ['1', 1],
      ['.5', 0.5],
      ['0.25', 0.25],
    ] as const)
      expect(ratioFlag({ 'unclaim-ratio': raw }, 'unclaim-ratio', 0.2)).toBe(n)
  })

  it('an unknown flag is a usage error; --help reads as no settings', () => {
    expect(() => readFlags(['--bogus'], {})).toThrow(UsageError)
    expect(readFlags(['--help'], {})).toBeUndefined()
  })
})

describe.runIf(services.ok)('start-up', () => {
  it('a store that cannot connect leaves no tables behind', async () => {
    const tablePrefix = `andromeda_test_${randomBytes(4).toString('hex')}_`
    await expect(
      startServer({ databaseUrl: DATABASE_URL, store: { url: 'redis://127.0.0.1:1' }, tablePrefix }),
    ).rejects.toThrow(/cannot connect to Redis/)
    const client = new pg.Client({ connectionString: DATABASE_URL })
    await client.connect()
    try {
      const { rows } = await client.query(`SELECT table_name FROM information_schema.tables WHERE table_name LIKE $1`, [
        `${tablePrefix}%`,
      ])
      expect(rows).toEqual([])
    } finally {
      await client.end()
    }
  })
})
