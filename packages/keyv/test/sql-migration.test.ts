import { counterKey, createQuota } from '@andromeda/core'
import Keyv from 'keyv'
import { afterAll, describe, expect, it } from 'vitest'
import { createKeyvStore, keyvSqlMigration } from '../src/index.js'
import { createStorageKeys } from '../src/sql/keys.js'
import { mysqlNames } from '../src/sql/mysql/names.js'
import { mysqlTables } from '../src/sql/mysql/tables.js'
import { postgresNames } from '../src/sql/postgres/names.js'
import { postgresTables } from '../src/sql/postgres/tables.js'
import { requireService } from './helpers.js'
import { answers, connectAdmin, type Dialect, SERVICE, sqlFixture } from './sql-fixture.js'

const available: Record<Dialect, boolean> = {
  postgres: requireService(await answers('postgres'), SERVICE.postgres),
  mysql: requireService(await answers('mysql'), SERVICE.mysql),
}

/**
 * The README's statements that copy counters kept by the process-atomic path (Keyv records in
 * the adapter's table) into the SQL path's table; namespace `shop`.
 */
const COPY: Record<Dialect, (keyvTable: string, table: string) => string> = {
  postgres: (keyvTable, table) => `INSERT INTO public.${table} (storage_key, value, expires_at)
SELECT convert_to(key, 'UTF8'), (value::jsonb #>> '{value,value}')::bigint, (value::jsonb #>> '{value,expiresAt}')::bigint
FROM public.${keyvTable}
WHERE key LIKE 'shop:%' AND value LIKE '{"value":{"type":"counter",%'
ON CONFLICT (storage_key) DO NOTHING`,
  mysql: (keyvTable, table) => `INSERT INTO ${table} (storage_key, value, expires_at)
SELECT CAST(CONVERT(id USING utf8mb4) AS BINARY), JSON_VALUE(value, '$.value.value'), JSON_VALUE(value, '$.value.expiresAt')
FROM ${keyvTable}
WHERE id LIKE 'shop:%' AND value LIKE '{"value":{"type":"counter",%'
ON DUPLICATE KEY UPDATE storage_key = storage_key`,
}

describe.each(['postgres', 'mysql'] as const)('moving to the SQL path on %s', (dialect) => {
  const fixture = sqlFixture(dialect)
  afterAll(() => fixture.drop())

  it.runIf(available[dialect])(
    "keyvSqlMigration and the README's copy move process-atomic counters to the SQL path, lifetimes kept",
    async () => {
      const adapter = fixture.adapter()
      // The process-atomic path, as an application had it: the adapter behind a plain wrapper.
      const plain = {
        get: (key: string) => adapter.get(key),
        set: (key: string, value: unknown) => adapter.set(key, value),
        delete: (key: string) => adapter.delete(key),
        clear: () => adapter.clear(),
      }
      const before = createKeyvStore({ keyv: new Keyv({ store: plain, namespace: 'shop' }) })
      expect(before.capabilities.atomic).toBe('process')
      const old = createQuota({ name: 'voucher', store: before, limit: 10, ttlMs: 3_600_000 })
      await old.consume('SUMMER', 3)
      await old.consume('x'.repeat(400), 4) // stored under a hashed key
      await old.consume('café', 5)

      const admin = await connectAdmin(dialect)
      try {
        for (const statement of keyvSqlMigration({ dialect, table: fixture.table })) await admin.query(statement)
        await admin.query(COPY[dialect](fixture.keyvTable, fixture.table))
      } finally {
        await admin.close()
      }

      const after = createKeyvStore({
        keyv: new Keyv({ store: adapter, namespace: 'shop' }),
        table: fixture.table,
        createTable: false,
      })
      expect(after.capabilities.atomic).toBe('global')
      const moved = createQuota({ name: 'voucher', store: after, limit: 10, ttlMs: 3_600_000 })
      expect(await moved.get('SUMMER')).toMatchObject({ usage: 3 })
      expect(await moved.get('x'.repeat(400))).toMatchObject({ usage: 4 })
      expect(await moved.get('café')).toMatchObject({ usage: 5 })
      const { resetAt } = await moved.get('SUMMER')
      expect(resetAt).toBeGreaterThan(Date.now() + 3_500_000)
      expect(await moved.consume('SUMMER', 7)).toMatchObject({ allowed: true, usage: 10 })
      await after.close?.()
    },
  )
})

describe.each(['postgres', 'mysql'] as const)('upgrading the SQL path on %s', (dialect) => {
  const fixture = sqlFixture(dialect)
  afterAll(() => fixture.drop())

  it.runIf(available[dialect])(
    "a database an earlier version migrated (its table and counters, not this version's routines) gets them on first use",
    async () => {
      // The tables as every version makes them, with a counter, and the routine v1's migration
      // made last (its presence is what a store takes for "migrated"). Routines are versioned by
      // name: a store of this version must not take v1's for its own.
      const postgres = postgresNames('public', fixture.table)
      const mysql = mysqlNames(fixture.table)
      const v1Unlock = (dialect === 'postgres' ? postgres.releaseLock : mysql.releaseLock).replace(/_v\d+/, '_v1')
      const key = createStorageKeys('andromeda:')(counterKey('voucher', 'SUMMER'), 'key')
      const admin = await connectAdmin(dialect)
      try {
        if (dialect === 'postgres') {
          for (const statement of postgresTables('public', fixture.table, postgres)) await admin.query(statement)
          await admin.query(`INSERT INTO ${postgres.table} (storage_key, value) VALUES ($1, 3)`, [key])
          await admin.query(
            `CREATE FUNCTION ${v1Unlock}(p_key bytea, p_token bytea, p_deadline bigint) RETURNS boolean LANGUAGE sql AS 'SELECT false'`,
          )
        } else {
          for (const statement of mysqlTables(fixture.table, mysql)) await admin.query(statement)
          await admin.query(`INSERT INTO ${mysql.table} (storage_key, value) VALUES (?, 3)`, [key])
          await admin.query(
            `CREATE PROCEDURE ${v1Unlock}(IN p_key VARBINARY(1024), IN p_token BLOB, IN p_deadline BIGINT) SELECT 0 AS reply`,
          )
        }

        const store = fixture.store()
        const quota = createQuota({ name: 'voucher', store, limit: 10 })
        expect(await quota.consume('SUMMER', 2)).toMatchObject({ allowed: true, usage: 5 })
        // This version's seed: with a lock token, only under that lock.
        expect(await store.seed(counterKey('voucher', 'NEW'), 1, undefined, 'no-such-lock')).toBe(false)
        expect(await store.seed(counterKey('voucher', 'NEW'), 1)).toBe(true)
      } finally {
        await admin.query(`DROP ${dialect === 'postgres' ? 'FUNCTION' : 'PROCEDURE'} IF EXISTS ${v1Unlock}`)
        await admin.close()
      }
    },
  )
})
