import type { Pool, PoolClient, PoolConfig, QueryConfig } from 'pg'
import { type CallControl, type FailureKind, NotSentError, parseGetReply, remainingMs, type SqlDriver } from './driver.js'
import { postgresGet } from './postgres/get.js'
import { postgresMigration } from './postgres/migration.js'
import { postgresNames } from './postgres/names.js'
import { DEADLINE_SQLSTATE, POSTGRES_NOW } from './postgres/parts.js'

/** Options of @keyv/postgres that are its own, not pg's. */
const ADAPTER_ONLY = ['uri', 'table', 'schema', 'keySize', 'dialect', 'iterationLimit', 'useUnloggedTable']

/** SQLSTATEs after which the database has rolled the call back for a passing reason. */
const TRANSIENT = new Set([
  DEADLINE_SQLSTATE,
  '55P03', // lock_not_available: our lock_timeout
  '57014', // query_canceled: statement_timeout or a cancel request
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '53400', // configuration_limit_exceeded
  '53200', // out_of_memory
])
const CONFLICT = new Set(['40001', '40P01']) // serialization_failure, deadlock_detected

interface DatabaseErrorLike {
  code?: unknown
  severity?: unknown
}

/** An error PostgreSQL sent (pg's DatabaseError carries the SQLSTATE in `code` and a `severity`). */
function sqlState(error: unknown): string | undefined {
  const e = error as DatabaseErrorLike | null
  return typeof e?.code === 'string' && typeof e.severity === 'string' ? e.code : undefined
}

export interface PostgresDriverSettings {
  /** The @keyv/postgres adapter's `opts`: its connection URI and pg pool options. */
  adapterOptions: Record<string, unknown>
  schema: string
  table: string
  commandTimeoutMs: number
  /** Longest lock wait of one statement: the time the database has for a call sent at once. */
  lockTimeoutMs: number
}

/**
 * The PostgreSQL driver: a pg `Pool` of the store's own, opened with the adapter's connection
 * options (URI, SSL, pool size, ...), with `error` listeners on the pool and on every client
 * while it is checked out, so a backend killed by `pg_terminate_backend` or a restart never
 * surfaces as an unhandled `error` event.
 *
 * Sessions are set to READ COMMITTED whatever the database's default: the functions lock the
 * rows they change, and under SERIALIZABLE every concurrent change of one counter would be a
 * serialization failure.
 */
export function createPostgresDriver(settings: PostgresDriverSettings): SqlDriver {
  const names = postgresNames(settings.schema, settings.table)
  const getText = postgresGet(names)
  let pool: Pool | undefined
  let opening: Promise<Pool> | undefined
  let closed = false

  function open(): Promise<Pool> {
    if (pool) return Promise.resolve(pool)
    opening ??= (async () => {
      const pg = (await import('pg')) as unknown as { default?: { Pool: typeof Pool }; Pool?: typeof Pool }
      const PoolClass = pg.default?.Pool ?? pg.Pool!
      const config: PoolConfig = {}
      for (const [key, value] of Object.entries(settings.adapterOptions)) if (!ADAPTER_ONLY.includes(key)) (config as Record<string, unknown>)[key] = value
      config.connectionString = settings.adapterOptions.uri as string
      // A caller gives up after commandTimeoutMs: never queue for a connection longer.
      config.connectionTimeoutMillis = Math.min(Number(config.connectionTimeoutMillis) || Number.POSITIVE_INFINITY, settings.commandTimeoutMs)
      config.allowExitOnIdle ??= true
      if (closed) throw new NotSentError('the store is closed')
      const created = new PoolClass(config)
      // An idle client whose backend ends emits `error` on the pool; without a listener Node
      // would throw it. pg-pool has already dropped that client.
      created.on('error', () => {})
      // Queued before any query of ours on a new connection. A lock wait ends by the time the
      // store gives up on a call sent at once (the database's deadline for it): the call is
      // then rolled back, and the store can say so.
      created.on('connect', (client) => {
        client
          .query(
            `SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED; SET lock_timeout = ${settings.lockTimeoutMs}; SET statement_timeout = ${settings.commandTimeoutMs}`,
          )
          .catch(() => {})
      })
      pool = created
      return created
    })().finally(() => {
      opening = undefined
    })
    return opening
  }

  /** A client, or NotSentError when the caller gave up first (a late client goes straight back). */
  async function checkout(control: CallControl): Promise<PoolClient> {
    const p = await open()
    if (control.signal.aborted) throw new NotSentError('given up before a connection was free')
    const pending = p.connect()
    return new Promise<PoolClient>((resolve, reject) => {
      const onAbort = () => {
        reject(new NotSentError('given up before a connection was free'))
        pending.then(
          (client) => client.release(),
          () => {},
        )
      }
      control.signal.addEventListener('abort', onAbort, { once: true })
      pending.then(
        (client) => {
          control.signal.removeEventListener('abort', onAbort)
          if (control.signal.aborted) return
          resolve(client)
        },
        (error: unknown) => {
          control.signal.removeEventListener('abort', onAbort)
          reject(error)
        },
      )
    })
  }

  /** One statement on one client, bounded by the caller's deadline. */
  async function query(text: string, values: unknown[], control: CallControl): Promise<Record<string, unknown>[]> {
    const client = await checkout(control)
    // pg-pool listens on idle clients only: a checked-out client needs a listener of its own.
    const onError = () => {}
    client.on('error', onError)
    control.sent = true
    let broken: unknown
    try {
      // On a read timeout pg gives up on the reply; the client is then destroyed, never reused.
      // (pg reads `query_timeout` from a query's config; @types/pg does not list it there.)
      const config = { text, values, query_timeout: remainingMs(control) } as QueryConfig
      const result = await client.query<Record<string, unknown>>(config)
      return result.rows
    } catch (error) {
      // A statement the server refused leaves the connection usable; anything else does not.
      const state = sqlState(error)
      if (state === undefined || (error as DatabaseErrorLike).severity === 'FATAL') broken = error
      throw error
    } finally {
      client.off('error', onError)
      client.release(broken as Error | undefined)
    }
  }

  return {
    dialect: 'postgres',

    async migrate(control) {
      const done = `SELECT to_regprocedure('${names.releaseLock}(bytea, bytea, bigint)') IS NOT NULL AS ready`
      const [row] = await query(done, [], control)
      if (row?.ready === true) return
      const client = await checkout(control)
      const onError = () => {}
      client.on('error', onError)
      let broken: unknown
      try {
        // One transaction under one advisory lock: processes starting together neither see a
        // half-made schema nor collide on CREATE OR REPLACE ("tuple concurrently updated").
        await client.query('BEGIN')
        await client.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`andromeda:${names.table}`])
        for (const statement of postgresMigration(settings.schema, settings.table)) await client.query(statement)
        await client.query('COMMIT')
      } catch (error) {
        await client.query('ROLLBACK').catch((rollbackError: unknown) => {
          broken = rollbackError
        })
        throw error
      } finally {
        client.off('error', onError)
        client.release(broken as Error | undefined)
      }
    },

    async now(control) {
      const [row] = await query(POSTGRES_NOW, [], control)
      return Number(row?.now_ms)
    },

    async apply(args, deadline, control) {
      const values = [
        args.keys,
        args.deltas,
        args.bounds,
        args.ttls,
        args.report,
        args.holdIds,
        args.holdMs,
        args.settleIds,
        args.keep,
        args.idempotencyKey,
        args.idempotencyTtlMs,
        args.clearKey,
        deadline,
      ]
      const text = `SELECT ${names.apply}($1::bytea[], $2::bigint[], $3::bigint[], $4::bigint[], $5::boolean[], $6::bytea[], $7::bigint[], $8::bytea[], $9::bigint[], $10::bytea, $11::bigint, $12::bytea, $13::bigint) AS reply`
      const [row] = await query(text, values, control)
      return String(row?.reply)
    },

    async write(routine, deadline, control) {
      let text: string
      let values: unknown[]
      switch (routine.name) {
        case 'seed':
        case 'set':
          values = [routine.key, routine.value, routine.ttlMs, deadline]
          text = `SELECT ${routine.name === 'seed' ? names.seed : names.set}($1::bytea, $2::bigint, $3::bigint, $4::bigint) AS done`
          break
        case 'delete':
          values = [routine.key, deadline]
          text = `SELECT ${names.delete}($1::bytea, $2::bigint) AS done`
          break
        case 'acquireLock':
          values = [routine.key, routine.token, routine.ttlMs, deadline]
          text = `SELECT ${names.acquireLock}($1::bytea, $2::bytea, $3::bigint, $4::bigint) AS done`
          break
        case 'releaseLock':
          values = [routine.key, routine.token, deadline]
          text = `SELECT ${names.releaseLock}($1::bytea, $2::bytea, $3::bigint) AS done`
          break
      }
      const [row] = await query(text, values, control)
      return row?.done === true
    },

    async get(key, deadline, control) {
      const [row] = await query(getText, [key], control)
      if (!row) return undefined
      if (row.stale === true) {
        // Expired holds: their units come back (a write, under the row lock) before the read.
        const [fresh] = await query(`SELECT ${names.get}($1::bytea, $2::bigint) AS reply`, [key, deadline], control)
        return parseGetReply(String(fresh?.reply ?? ''))
      }
      return { value: String(row.value), ttlMs: row.ttl_ms === null ? null : String(row.ttl_ms) }
    },

    classify(error, control): FailureKind {
      if (error instanceof NotSentError) return 'not-sent'
      const state = sqlState(error)
      if (state === undefined) return control.sent ? 'unknown' : 'not-sent'
      if (CONFLICT.has(state)) return 'conflict'
      // The session was ended (pg_terminate_backend, a shutdown) while the statement ran: it
      // was rolled back unless it had just committed. Not knowable from here.
      if (state.startsWith('57P0') && state !== '57P03') return control.sent ? 'unknown' : 'not-sent'
      if (TRANSIENT.has(state) || state.startsWith('08')) return 'rolled-back-transient'
      return 'rolled-back'
    },

    async close() {
      closed = true
      await opening?.catch(() => {})
      const p = pool
      pool = undefined
      await p?.end()
    },
  }
}
