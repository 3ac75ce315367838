import { randomBytes } from 'node:crypto'
import type { CounterStore } from '@andromeda/core'
import KeyvMysql from '@keyv/mysql'
import KeyvPostgres from '@keyv/postgres'
import Keyv from 'keyv'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { createKeyvStore, type KeyvStoreOptions } from '../src/index.js'
import { mysqlNames } from '../src/sql/mysql/names.js'
import { postgresNames } from '../src/sql/postgres/names.js'
import { POSTGRES_URL, postgresAnswers } from './helpers.js'

export const MYSQL_URL = 'mysql://root@127.0.0.1:3306/test'
export type Dialect = 'postgres' | 'mysql'
export const SERVICE: Record<Dialect, string> = {
  postgres: 'PostgreSQL at 127.0.0.1:5432 (database test)',
  mysql: 'MariaDB or MySQL at 127.0.0.1:3306 (root, database test)',
}

/** True when MariaDB / MySQL accepts a query at `MYSQL_URL`. */
export async function mysqlAnswers(): Promise<boolean> {
  try {
    const connection = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 1000 })
    try {
      await connection.query('SELECT 1')
      return true
    } finally {
      await connection.end().catch(() => {})
    }
  } catch {
    return false
  }
}

export const answers = (dialect: Dialect) => (dialect === 'postgres' ? postgresAnswers() : mysqlAnswers())

/** A plain admin connection, for what the tests do beside the store (lock rows, kill sessions, look). */
export interface Admin {
  query(sql: string, values?: unknown[]): Promise<Record<string, unknown>[]>
  close(): Promise<void>
}

export async function connectAdmin(dialect: Dialect): Promise<Admin> {
  if (dialect === 'postgres') {
    const client = new pg.Client({ connectionString: POSTGRES_URL })
    client.on('error', () => {})
    await client.connect()
    return {
      query: async (sql, values) => (await client.query(sql, values)).rows,
      close: () => client.end(),
    }
  }
  const connection = await mysql.createConnection({ uri: MYSQL_URL })
  connection.on('error', () => {})
  return {
    query: async (sql, values) => {
      const [rows] = await connection.query(sql, values)
      return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : []
    },
    close: () => connection.end(),
  }
}

/**
 * One test file's tables on one database: the store's table (random name) and the Keyv
 * adapter's own table (random name), both dropped, with the store's routines, by `drop()`.
 */
export function sqlFixture(dialect: Dialect) {
  const suffix = randomBytes(6).toString('hex')
  const table = `andromeda_test_${suffix}`
  const keyvTable = `keyv_test_${suffix}`
  const adapters: { disconnect(): Promise<void> }[] = []
  const stores: CounterStore[] = []

  const adapter = (extra: Record<string, unknown> = {}) => {
    const created =
      dialect === 'postgres'
        ? new KeyvPostgres({ uri: POSTGRES_URL, table: keyvTable, ...extra })
        : new KeyvMysql({ uri: MYSQL_URL, table: keyvTable, ...extra })
    adapters.push(created)
    return created
  }

  return {
    dialect,
    table,
    /** The Keyv adapter's own table (created by the adapter, dropped here). */
    keyvTable,
    adapter,
    /** A store on a fresh adapter (extra adapter options: pool size, ...), closed by `drop()`. */
    store(options: Omit<KeyvStoreOptions, 'keyv'> = {}, adapterOptions: Record<string, unknown> = {}): CounterStore {
      const store = createKeyvStore({
        keyv: new Keyv({ store: adapter(adapterOptions), namespace: 'andromeda' }),
        table,
        ...options,
      })
      stores.push(store)
      return store
    },
    /** Rows in the store's tables (counters, records, locks and holds): what the database keeps. */
    async rows(): Promise<number> {
      const admin = await connectAdmin(dialect)
      try {
        const names = dialect === 'postgres' ? postgresNames('public', table) : mysqlNames(table)
        const [counted] = await admin.query(
          `SELECT (SELECT count(*) FROM ${names.table}) + (SELECT count(*) FROM ${names.holds}) AS n`,
        )
        return Number(counted?.n ?? 0)
      } finally {
        await admin.close()
      }
    },
    async drop(): Promise<void> {
      await Promise.allSettled(stores.map((store) => store.close?.()))
      // Without the database (its tests skipped), there is nothing to drop.
      const admin = await connectAdmin(dialect).catch(() => undefined)
      if (!admin) return
      try {
        if (dialect === 'postgres') {
          const names = postgresNames('public', table)
          await admin.query(`DROP TABLE IF EXISTS ${names.table}, ${names.holds}, public.${keyvTable}`)
          for (const routine of [
            names.apply,
            names.get,
            names.seed,
            names.set,
            names.delete,
            names.acquireLock,
            names.releaseLock,
          ]) {
            await admin.query(`DROP FUNCTION IF EXISTS ${routine}`)
          }
        } else {
          const names = mysqlNames(table)
          await admin.query(`DROP TABLE IF EXISTS ${names.table}, ${names.holds}, \`${keyvTable}\``)
          for (const routine of [
            names.apply,
            names.get,
            names.seed,
            names.set,
            names.delete,
            names.acquireLock,
            names.releaseLock,
          ]) {
            await admin.query(`DROP PROCEDURE IF EXISTS ${routine}`)
          }
        }
      } finally {
        await admin.close()
      }
      // The adapters share one module-wide pool per URI: end it once everything is done.
      await Promise.allSettled(adapters.map((a) => a.disconnect()))
    },
  }
}
