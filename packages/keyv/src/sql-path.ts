import { checkOptionKeys, InvalidArgumentError } from '@andromeda/core'
import { minKeyLength } from './backend.js'
import type { KeyvCounterStore } from './counter-store.js'
import { commitAllowanceMs } from './sql/calls.js'
import { SQL_MAX_KEY_LENGTH } from './sql/keys.js'
import { mysqlMigration } from './sql/mysql/migration.js'
import { createMysqlDriver } from './sql/mysql-driver.js'
import { postgresMigration } from './sql/postgres/migration.js'
import { createPostgresDriver } from './sql/postgres-driver.js'
import { createSqlStore } from './sql/store.js'

/** The parts of an @keyv/postgres or @keyv/mysql adapter this package reads. */
export interface KeyvSqlLike {
  readonly opts: { dialect?: unknown; uri?: unknown; schema?: unknown } & Record<string, unknown>
  query(...args: unknown[]): unknown
}

/** The table the SQL path keeps its counters in unless told otherwise. */
export const DEFAULT_SQL_TABLE = 'andromeda_counters'
/** Letters, digits and `_`, not starting with a digit; short enough for the routine names built on it. */
const TABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/

/** 'postgres' for an @keyv/postgres adapter, 'mysql' for @keyv/mysql, otherwise undefined. */
export function sqlDialectOf(store: unknown): 'postgres' | 'mysql' | undefined {
  if (typeof store !== 'object' || store === null) return undefined
  const s = store as Partial<KeyvSqlLike>
  if (typeof s.query !== 'function' || typeof s.opts !== 'object' || s.opts === null || typeof s.opts.uri !== 'string')
    return undefined
  if (s.opts.dialect === 'postgres') return 'postgres'
  if (s.opts.dialect === 'mysql') return 'mysql'
  return undefined
}

export interface SqlPathOptions {
  prefix: string
  commandTimeoutMs: number
  table: unknown
  createTable: unknown
}

function checkTable(table: unknown): string {
  if (typeof table !== 'string' || !TABLE_NAME.test(table)) {
    throw new InvalidArgumentError('table', 'must be 1 to 48 letters, digits or "_", not starting with a digit')
  }
  return table
}

function checkSchema(argument: string, schema: unknown): string {
  if (typeof schema !== 'string' || !SCHEMA_NAME.test(schema)) {
    throw new InvalidArgumentError(argument, 'must be 1 to 63 letters, digits or "_", not starting with a digit')
  }
  return schema
}

/** Options of `keyvSqlMigration`. */
export interface KeyvSqlMigrationOptions {
  /** `'postgres'` for @keyv/postgres, `'mysql'` for @keyv/mysql (MySQL 8.0.29+ or MariaDB 10.6+). */
  dialect: 'postgres' | 'mysql'
  /** The store's `table` option. Default `'andromeda_counters'`. */
  table?: string
  /** PostgreSQL only: the @keyv/postgres adapter's `schema`. Default `'public'`. */
  schema?: string
}

/**
 * The SQL that creates the table and routines of the SQL path: what `createKeyvStore` runs on
 * first use unless `createTable: false`. Run it from your migrations when the application's
 * database user may not create tables or routines. Every statement is idempotent; run them from
 * one place at a time (on PostgreSQL, concurrent `CREATE OR REPLACE FUNCTION`s of one function
 * fail with `tuple concurrently updated`).
 *
 * @param options - `dialect` (required), `table`, `schema`.
 * @returns the statements, in order; run each as one query.
 * @throws InvalidArgumentError for an option it does not know, a `schema` with the `mysql`
 *   dialect, an unknown `dialect`, or a `table` / `schema` that is not a plain identifier (1 to
 *   48 / 63 letters, digits or `_`, not starting with a digit).
 *
 * @example
 * ```ts
 * import pg from 'pg'
 * import { keyvSqlMigration } from '@andromeda/keyv'
 *
 * const client = new pg.Client({ connectionString: process.env.DATABASE_URL })
 * await client.connect()
 * try {
 *   for (const statement of keyvSqlMigration({ dialect: 'postgres' })) await client.query(statement)
 * } finally {
 *   await client.end()
 * }
 * ```
 */
export function keyvSqlMigration(options: KeyvSqlMigrationOptions): string[] {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'must be an object')
  checkOptionKeys('', options, ['dialect', 'table', 'schema'])
  const table = checkTable(options.table ?? DEFAULT_SQL_TABLE)
  if (options.dialect === 'mysql' && options.schema !== undefined) {
    throw new InvalidArgumentError('schema', "is an option of the 'postgres' dialect only")
  }
  if (options.dialect === 'postgres') return postgresMigration(checkSchema('schema', options.schema ?? 'public'), table)
  if (options.dialect === 'mysql') return mysqlMigration(table)
  throw new InvalidArgumentError('dialect', `must be 'postgres' or 'mysql', got ${String(options.dialect)}`)
}

/**
 * The globally atomic path on @keyv/postgres and @keyv/mysql: counters live in a table of the
 * store's own, changed only through routines that each run as one transaction in the database,
 * over a pool the store opens with the adapter's connection options.
 */
export function createKeyvSqlPath(
  adapter: KeyvSqlLike,
  dialect: 'postgres' | 'mysql',
  options: SqlPathOptions,
): KeyvCounterStore {
  const table = checkTable(options.table ?? DEFAULT_SQL_TABLE)
  if (options.createTable !== undefined && typeof options.createTable !== 'boolean')
    throw new InvalidArgumentError('createTable', 'must be a boolean')
  if (minKeyLength(options.prefix) > SQL_MAX_KEY_LENGTH) {
    throw new InvalidArgumentError(
      'keyv',
      `its namespace must be at most ${SQL_MAX_KEY_LENGTH - minKeyLength('') - 1} characters on the SQL path`,
    )
  }
  const adapterOptions = adapter.opts
  let driver: ReturnType<typeof createPostgresDriver>
  if (dialect === 'postgres') {
    const schema = checkSchema('keyv', adapterOptions.schema ?? 'public')
    const lockTimeoutMs = Math.max(options.commandTimeoutMs - commitAllowanceMs(options.commandTimeoutMs), 1)
    driver = createPostgresDriver({
      adapterOptions,
      schema,
      table,
      commandTimeoutMs: options.commandTimeoutMs,
      lockTimeoutMs,
    })
  } else {
    driver = createMysqlDriver({ adapterOptions, table, commandTimeoutMs: options.commandTimeoutMs })
  }
  return createSqlStore({
    driver,
    prefix: options.prefix,
    commandTimeoutMs: options.commandTimeoutMs,
    createTable: options.createTable !== false,
  })
}
