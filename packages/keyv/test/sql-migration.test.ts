import { createQuota } from '@andromeda/core'
import Keyv from 'keyv'
import { afterAll, describe, expect, it } from 'vitest'
import { createKeyvStore, keyvSqlMigration } from '../src/index.js'
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
