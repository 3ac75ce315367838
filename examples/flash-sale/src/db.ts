import { AsyncLocalStorage } from 'node:async_hooks'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'

type Query = <R extends Record<string, unknown>>(text: string, params?: unknown[]) => Promise<{ rows: R[] }>

/** The little SQL surface the service needs; PGlite and a `pg` Pool both provide it. */
interface Sql {
  query: Query
  /** Run `fn` in one transaction (its queries through the `Query` it is given): committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (query: Query) => Promise<T>): Promise<T>
  close(): Promise<void>
}

/** One voucher as stored: `usage` is what the write-behind sync last saved. */
export interface VoucherRow {
  code: string
  limit: number
  usage: number
  /** Claim rows, kept by the same statements that insert and delete them: the database's guard of the limit. */
  claimed: number
}

/** The system of record of the flash sale: vouchers and the claims made against them. */
export interface Database {
  /** 'pglite' (embedded, in this process) or 'postgres' (a server, by URL). */
  readonly kind: 'pglite' | 'postgres'
  /** Table names, e.g. `andromeda_demo_vouchers`. */
  readonly tables: { vouchers: string; claims: string }
  /** Create the tables if they do not exist. */
  migrate(): Promise<void>
  /** Add vouchers, or change the limit of existing ones (usage is left alone). */
  upsertVouchers(vouchers: { code: string; limit: number }[]): Promise<void>
  /** The limit of a voucher, undefined when there is no such voucher. */
  voucherLimit(code: string): Promise<number | undefined>
  voucherCodes(): Promise<string[]>
  vouchers(): Promise<VoucherRow[]>
  /**
   * Claim rows of a voucher (of one user of it, when `user` is given). Waits for the unclaims
   * in progress (see `deleteClaim`), so it never counts a row whose units already went back.
   */
  countClaims(voucher: string, user?: string): Promise<number>
  /** The users holding a claim on a voucher. */
  claimUsers(voucher: string): Promise<string[]>
  /**
   * Insert a claim unless the voucher already has `limit` claim rows: true when inserted, false
   * when the voucher is full. Rejects with a unique violation (code 23505) if the user already
   * has a claim on it.
   */
  insertClaim(voucher: string, user: string): Promise<boolean>
  /**
   * Delete a claim; true when there was one. `beforeDelete` runs while the row is locked and
   * before it goes, with the claim's `claimed_at` (text, unique to this claim of this user);
   * when it throws, or the process dies, the row stays.
   */
  deleteClaim(voucher: string, user: string, beforeDelete?: (claimedAt: string) => Promise<unknown>): Promise<boolean>
  /** Write-behind target of the usage sync. */
  saveUsage(code: string, usage: number): Promise<void>
  /** Drop this database's tables (the demo's own, random-prefixed ones). */
  dropTables(): Promise<void>
  close(): Promise<void>
}

export interface DatabaseOptions {
  /** `postgres://...` for a PostgreSQL server; omitted: embedded PGlite. */
  url?: string
  /** PGlite only: a data directory to keep the data in; omitted: in memory. */
  dataDir?: string
  /** Prefix of the table names, letters, digits and underscores. Default `andromeda_demo_`. */
  tablePrefix?: string
  /** Pool size for PostgreSQL. Default 20. */
  poolSize?: number
}

/** Postgres' SQLSTATE for a unique violation. */
export const UNIQUE_VIOLATION = '23505'

export function isUniqueViolation(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === UNIQUE_VIOLATION
}

/** Open PGlite (embedded) or PostgreSQL (when `url` is given) behind one interface. */
export async function openDatabase(options: DatabaseOptions = {}): Promise<Database> {
  const prefix = options.tablePrefix ?? 'andromeda_demo_'
  if (!/^[a-z_][a-z0-9_]*$/i.test(prefix))
    throw new Error(`table prefix must be letters, digits and underscores, got "${prefix}"`)
  const tables = { vouchers: `${prefix}vouchers`, claims: `${prefix}claims` }
  let sql: Sql
  let kind: Database['kind']
  if (options.url) {
    kind = 'postgres'
    const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 20 })
    // An idle client's error (the server went away) must not crash the process.
    pool.on('error', () => {})
    sql = {
      query: (text, params) => pool.query(text, params) as never,
      async transaction(fn) {
        const client = await pool.connect()
        let broken: Error | undefined
        try {
          await client.query('BEGIN')
          const value = await fn((text, params) => client.query(text, params) as never)
          await client.query('COMMIT')
          return value
        } catch (error) {
          await client.query('ROLLBACK').catch((rollback: Error) => {
            broken = rollback // a connection that cannot roll back goes, not back to the pool
          })
          throw error
        } finally {
          client.release(broken)
        }
      },
      close: () => pool.end(),
    }
  } else {
    kind = 'pglite'
    const lite = await PGlite.create(options.dataDir)
    // PGlite runs one query or transaction at a time: others wait for a transaction to end.
    sql = {
      query: (text, params) => lite.query(text, params) as never,
      transaction: (fn) => lite.transaction((tx) => fn((text, params) => tx.query(text, params) as never)),
      close: () => lite.close(),
    }
  }
  // What a transaction's callback starts (the quotas' limit lookups, say) queries through that
  // transaction: outside it, it would wait for the transaction to end (PGlite runs one at a
  // time) or for a pooled connection the waiting transactions hold.
  const current = new AsyncLocalStorage<Query>()
  const outside = sql
  sql = {
    query: (text, params) => (current.getStore() ?? outside.query)(text, params),
    transaction: (fn) => outside.transaction((query) => current.run(query, () => fn(query))),
    close: () => outside.close(),
  }
  const { vouchers: V, claims: C } = tables

  return {
    kind,
    tables,
    async migrate() {
      await sql.query(`CREATE TABLE IF NOT EXISTS ${V} (
        code text PRIMARY KEY,
        "limit" integer NOT NULL CHECK ("limit" >= 0),
        usage integer NOT NULL DEFAULT 0 CHECK (usage >= 0),
        claimed integer NOT NULL DEFAULT 0 CHECK (claimed >= 0)
      )`)
      // The primary key is the database's own guard of "one claim per user per voucher".
      await sql.query(`CREATE TABLE IF NOT EXISTS ${C} (
        voucher text NOT NULL REFERENCES ${V} (code) ON DELETE CASCADE,
        user_id text NOT NULL,
        claimed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (voucher, user_id)
      )`)
    },
    async upsertVouchers(list) {
      for (const { code, limit } of list) {
        await sql.query(
          `INSERT INTO ${V} (code, "limit") VALUES ($1, $2) ON CONFLICT (code) DO UPDATE SET "limit" = EXCLUDED."limit"`,
          [code, limit],
        )
      }
    },
    async voucherLimit(code) {
      const { rows } = await sql.query<{ limit: number }>(`SELECT "limit" FROM ${V} WHERE code = $1`, [code])
      return rows[0]?.limit
    },
    async voucherCodes() {
      const { rows } = await sql.query<{ code: string }>(`SELECT code FROM ${V} ORDER BY code`)
      return rows.map((row) => row.code)
    },
    async vouchers() {
      const { rows } = await sql.query<{ code: string; limit: number; usage: number; claimed: number }>(
        `SELECT code, "limit", usage, claimed FROM ${V} ORDER BY code`,
      )
      return rows
    },
    async countClaims(voucher, user) {
      // FOR KEY SHARE waits for a row an unclaim has locked (FOR UPDATE) and skips it once the
      // unclaim deleted it: a counter loaded from this count never holds a unit that went back.
      const where = user === undefined ? 'voucher = $1' : 'voucher = $1 AND user_id = $2'
      const { rows } = await sql.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM (SELECT 1 FROM ${C} WHERE ${where} FOR KEY SHARE) AS live`,
        user === undefined ? [voucher] : [voucher, user],
      )
      return rows[0]!.n
    },
    async claimUsers(voucher) {
      const { rows } = await sql.query<{ user_id: string }>(`SELECT user_id FROM ${C} WHERE voucher = $1`, [voucher])
      return rows.map((row) => row.user_id)
    },
    async insertClaim(voucher, user) {
      // The counters are the fast guard of the limit, this is the last one: a counter can be
      // lower than the rows for a while (Redis restarted while a claim was between its counter
      // and its row, and the counter was reloaded without it), and then only the system of
      // record can refuse the unit. One statement: the UPDATE takes the voucher's row lock and
      // re-checks `claimed < limit` on the latest version, so concurrent claims queue up on
      // it; a unique violation of the INSERT undoes the UPDATE.
      const { rows } = await sql.query(
        `WITH slot AS (
           UPDATE ${V} SET claimed = claimed + 1 WHERE code = $1 AND claimed < "limit" RETURNING code
         )
         INSERT INTO ${C} (voucher, user_id) SELECT code, $2 FROM slot RETURNING voucher`,
        [voucher, user],
      )
      return rows.length > 0
    },
    deleteClaim(voucher, user, beforeDelete) {
      return sql.transaction(async (query) => {
        const { rows } = await query<{ claimed_at: string }>(
          `SELECT claimed_at::text FROM ${C} WHERE voucher = $1 AND user_id = $2 FOR UPDATE`,
          [voucher, user],
        )
        if (rows.length === 0) return false
        await beforeDelete?.(rows[0]!.claimed_at)
        // The voucher row first, as `insertClaim` takes it: a claim of the same user never
        // waits on this delete while holding the voucher row.
        await query(`UPDATE ${V} SET claimed = claimed - 1 WHERE code = $1`, [voucher])
        await query(`DELETE FROM ${C} WHERE voucher = $1 AND user_id = $2`, [voucher, user])
        return true
      })
    },
    async saveUsage(code, usage) {
      await sql.query(`UPDATE ${V} SET usage = $2 WHERE code = $1`, [code, usage])
    },
    async dropTables() {
      await sql.query(`DROP TABLE IF EXISTS ${C}`)
      await sql.query(`DROP TABLE IF EXISTS ${V}`)
    },
    close: () => sql.close(),
  }
}
