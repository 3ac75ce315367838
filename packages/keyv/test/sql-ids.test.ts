import { counterKey, createQuota, InvalidArgumentError } from '@andromeda/core'
import { lockKey } from '@andromeda/core/store'
import Keyv from 'keyv'
import { afterAll, describe, expect, it } from 'vitest'
import { MAX_TOKEN_LENGTH } from '../src/args.js'
import { createKeyvStore, keyvSqlMigration } from '../src/index.js'
import { requireService } from './helpers.js'
import { answers, connectAdmin, type Dialect, SERVICE, sqlFixture } from './sql-fixture.js'

const available: Record<Dialect, boolean> = {
  postgres: requireService(await answers('postgres'), SERVICE.postgres),
  mysql: requireService(await answers('mysql'), SERVICE.mysql),
}

/** Ids users pass (API keys, IPs, names): each must be an ordinary id of its own. */
const HOSTILE_IDS = [
  "it's",
  'say "hi"',
  'back\\slash',
  'trailing\\',
  "\\'",
  'semi;colon',
  "x'); DELETE FROM andromeda_counters; --",
  "'; DROP TABLE keyv; --",
  '-- comment',
  '/* comment */',
  '%_wildcards_%',
  'nul\u0000inside',
  '\u0000',
  'a\u0000',
  'a',
  'a ',
  ' a',
  'abc',
  'Abc',
  'ABC',
  'cafe',
  'café',
  'cafe\u0301',
  'STRASSE',
  'strasse',
  'straße',
  '😀'.repeat(2_500), // 10 kB of UTF-8
  '€'.repeat(3_400), // 10 kB of UTF-8, 3 bytes a character
  'x'.repeat(150),
  'x'.repeat(151),
  `${'x'.repeat(300)}a`,
  `${'x'.repeat(300)}b`,
]

/** The `argument` of the InvalidArgumentError a call rejects with, else what happened. */
async function rejected(call: () => Promise<unknown>): Promise<string> {
  try {
    await call()
  } catch (error) {
    return InvalidArgumentError.isInstance(error) ? error.argument : `not an InvalidArgumentError: ${String(error)}`
  }
  return 'no error'
}

describe.each(['postgres', 'mysql'] as const)('ids on %s', (dialect) => {
  const fixture = sqlFixture(dialect)
  afterAll(() => fixture.drop())

  it.runIf(available[dialect])(
    'quotes, backslashes, ;, --, NUL, case, accents and 10 kB ids are each an ordinary id, and no other row changes',
    async () => {
      const adapter = fixture.adapter()
      const keyv = new Keyv({ store: adapter, namespace: 'andromeda' })
      const store = createKeyvStore({ keyv, table: fixture.table })
      const quota = createQuota({ name: 'api', store, limit: 1_000_000 })
      // Rows that must stay as they are: a counter of another quota, and a value of Keyv's own.
      const other = createQuota({ name: 'other', store, limit: 100 })
      await other.consume('sentinel', 42)
      await keyv.set('sentinel', 'keep me')

      for (const [i, id] of HOSTILE_IDS.entries())
        expect(await quota.consume(id, i + 1)).toMatchObject({ allowed: true, usage: i + 1 })
      for (const [i, id] of HOSTILE_IDS.entries()) expect((await quota.get(id)).usage).toBe(i + 1)
      // A second round lands on the same counters.
      for (const [i, id] of HOSTILE_IDS.entries())
        expect(await quota.refund(id, 1)).toMatchObject({ allowed: true, usage: i })

      expect((await other.get('sentinel')).usage).toBe(42)
      expect(await keyv.get('sentinel')).toBe('keep me')
      const admin = await connectAdmin(dialect)
      try {
        const table = dialect === 'postgres' ? `public."${fixture.table}"` : `\`${fixture.table}\``
        const [row] = await admin.query(`SELECT COUNT(*) AS n FROM ${table}`)
        // One row per id, one for the sentinel: no id created, merged or removed another row.
        expect(Number(row?.n)).toBe(HOSTILE_IDS.length + 1)
      } finally {
        await admin.close()
      }
      await store.close?.()
    },
  )

  it.runIf(available[dialect])('ids far longer than the adapter keySize work (no "value too long")', async () => {
    const store = fixture.store({}, { keySize: 100 })
    const quota = createQuota({ name: 'long', store, limit: 5 })
    for (const length of [150, 1_000, 16_384]) {
      const id = 'k'.repeat(length)
      expect(await quota.consume(id, 2)).toMatchObject({ allowed: true, usage: 2 })
      expect(await quota.consume(id, 4)).toMatchObject({ allowed: false, usage: 2 })
      expect((await store.get(counterKey('long', id)))?.value).toBe(2)
    }
  })

  it.runIf(available[dialect])(
    `lock tokens of up to ${MAX_TOKEN_LENGTH} characters fit (49 kB of UTF-8 too); a longer one is an InvalidArgumentError naming it, and nothing is written`,
    async () => {
      const store = fixture.store()
      const key = `{t${Math.random().toString(36).slice(2)}}:usage`
      // 3 bytes a character: the most UTF-8 a token of this length can take, under MySQL's BLOB of 65,535 bytes.
      const longest = '€'.repeat(MAX_TOKEN_LENGTH)
      const tooLong = 'z'.repeat(MAX_TOKEN_LENGTH + 1)
      expect(await rejected(() => store.acquireLock(lockKey(key), tooLong, 10_000))).toBe('token')
      expect(await rejected(() => store.seed(key, 3, undefined, tooLong))).toBe('lockToken')
      expect(await rejected(() => store.releaseLock(lockKey(key), tooLong))).toBe('token')
      expect(await store.get(key)).toBeUndefined()
      expect(await store.acquireLock(lockKey(key), longest, 10_000)).toBe(true)
      expect(await store.seed(key, 3, undefined, longest)).toBe(true)
      expect(await store.get(key)).toMatchObject({ value: 3 })
      expect(await store.releaseLock(lockKey(key), longest)).toBe(true)
      await store.close?.()
    },
  )

  it.runIf(available[dialect])('table names are checked as identifiers before anything reaches the database', () => {
    const keyv = new Keyv({ store: fixture.adapter(), namespace: 'andromeda' })
    for (const table of ['x; DROP TABLE keyv', 'a"b', 'a`b', 'a.b', '1abc', '', 'a'.repeat(49), 'tab le']) {
      expect(() => createKeyvStore({ keyv, table })).toThrow(InvalidArgumentError)
    }
    expect(() => createKeyvStore({ keyv, table: 'a'.repeat(48) })).not.toThrow()
    expect(() => keyvSqlMigration({ dialect, table: "x'; --" })).toThrow(InvalidArgumentError)
  })
})

describe('SQL path arguments', () => {
  /** An @keyv/postgres look-alike: only its options are read when the store is created. */
  const lookalike = (opts: Record<string, unknown>) => ({
    store: {
      opts: { dialect: 'postgres', uri: 'postgresql://127.0.0.1:1/none', ...opts },
      query() {},
      get() {},
      set() {},
      delete() {},
    },
    namespace: 'andromeda',
  })

  it('a @keyv/postgres schema that is not a plain identifier is refused, naming keyv', () => {
    const error = (() => {
      try {
        createKeyvStore({ keyv: lookalike({ schema: 'public; DROP TABLE x' }) })
      } catch (e) {
        return e
      }
    })()
    expect(InvalidArgumentError.isInstance(error)).toBe(true)
    expect((error as InvalidArgumentError).message).toContain('keyv')
  })

  it('createTable must be a boolean and the namespace must leave room for hashed keys', () => {
    expect(() => createKeyvStore({ keyv: lookalike({}), createTable: 'yes' as never })).toThrow(InvalidArgumentError)
    expect(() => createKeyvStore({ keyv: { ...lookalike({}), namespace: 'n'.repeat(200) } })).toThrow(
      InvalidArgumentError,
    )
  })

  it('keyvSqlMigration names an unknown dialect', () => {
    expect(() => keyvSqlMigration({ dialect: 'oracle' as never })).toThrow(/dialect/)
  })

  it('keyvSqlMigration refuses an option it does not know, and a schema on MySQL, naming it', () => {
    const misspelt = () => keyvSqlMigration({ dialect: 'postgres', tabel: 'orders_quota' } as never)
    expect(misspelt).toThrow(InvalidArgumentError)
    expect(misspelt).toThrow(/tabel: is not an option \(did you mean 'table'\?\)/)
    const schemaOnMysql = () => keyvSqlMigration({ dialect: 'mysql', schema: 'x' })
    expect(schemaOnMysql).toThrow(InvalidArgumentError)
    expect(schemaOnMysql).toThrow(/^schema: /)
  })
})
