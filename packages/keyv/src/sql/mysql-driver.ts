import type { Pool, PoolConnection, PoolOptions } from 'mysql2'
import { type CallControl, type FailureKind, NotSentError, parseGetReply, type SqlDriver } from './driver.js'
import { mysqlGet } from './mysql/get.js'
import { mysqlMigration } from './mysql/migration.js'
import { mysqlNames } from './mysql/names.js'
import { DEADLINE_MESSAGE, MYSQL_NOW } from './mysql/parts.js'

/** Options of @keyv/mysql (and of Keyv) that are not mysql2's. */
const ADAPTER_ONLY = [
  'adapter',
  'compression',
  'connect',
  'dialect',
  'keySize',
  'table',
  'ttl',
  'uri',
  'namespace',
  'serialize',
  'deserialize',
  'intervalExpiration',
  'iterationLimit',
]

const ER_LOCK_WAIT_TIMEOUT = 1205
const ER_LOCK_DEADLOCK = 1213
const ER_CON_COUNT_ERROR = 1040
/** The statement was stopped by a time limit: MariaDB's max_statement_time, MySQL's max_execution_time. */
const STATEMENT_TIME_LIMIT = new Set([1969, 3024])
/** The session was killed or the server went away while the statement ran. */
const SESSION_ENDED = new Set([1053, 1317, 1927, 2006, 2013])

interface MysqlErrorLike {
  errno?: unknown
  sqlState?: unknown
  sqlMessage?: unknown
  fatal?: unknown
}

export interface MysqlDriverSettings {
  /** The @keyv/mysql adapter's `opts`: its connection URI and mysql2 pool options. */
  adapterOptions: Record<string, unknown>
  table: string
  commandTimeoutMs: number
}

/** The connection URI the way @keyv/mysql reads it (`mysql://user:password@host:port/database`). */
function parseUri(uri: string): PoolOptions {
  const url = new URL(uri.replace(/#/g, '%23'))
  const options: PoolOptions = {
    user: decodeURIComponent(url.username),
    host: url.hostname,
    database: decodeURIComponent(url.pathname.slice(1)),
  }
  if (url.password) options.password = decodeURIComponent(url.password)
  if (url.port) options.port = Number.parseInt(url.port, 10)
  return options
}

/**
 * The MySQL / MariaDB driver: a mysql2 pool of the store's own, opened with the adapter's
 * connection options. Every value reaches the server through mysql2's escaping (`?`
 * placeholders; Buffers as hex literals). Every connection has an `error` listener, so a
 * session killed with `KILL` never surfaces as an unhandled `error` event.
 */
export function createMysqlDriver(settings: MysqlDriverSettings): SqlDriver {
  const names = mysqlNames(settings.table)
  const getText = mysqlGet(names)
  let pool: Pool | undefined
  let opening: Promise<Pool> | undefined
  let closed = false

  function open(): Promise<Pool> {
    if (pool) return Promise.resolve(pool)
    opening ??= (async () => {
      const mysql = (await import('mysql2')) as unknown as { default?: { createPool: (o: PoolOptions) => Pool }; createPool?: (o: PoolOptions) => Pool }
      const createPool = mysql.default?.createPool ?? mysql.createPool!
      const config: PoolOptions = parseUri(String(settings.adapterOptions.uri ?? 'mysql://localhost'))
      for (const [key, value] of Object.entries(settings.adapterOptions)) if (!ADAPTER_ONLY.includes(key)) (config as Record<string, unknown>)[key] = value
      // One statement per query, always: values are escaped, but a second statement is never wanted.
      config.multipleStatements = false
      config.connectTimeout = Math.min(Number(config.connectTimeout) || Number.POSITIVE_INFINITY, settings.commandTimeoutMs)
      if (closed) throw new NotSentError('the store is closed')
      const created = createPool(config)
      created.on('connection', (connection) => {
        connection.on('error', () => {})
        // Queued before any query of ours. InnoDB counts lock waits in whole seconds.
        const lockWaitSeconds = Math.min(Math.max(Math.ceil(settings.commandTimeoutMs / 1000), 1), 1_073_741_824)
        connection.query(`SET SESSION innodb_lock_wait_timeout = ${lockWaitSeconds}`, () => {})
      })
      pool = created
      return created
    })().finally(() => {
      opening = undefined
    })
    return opening
  }

  /** A connection, or NotSentError when the caller gave up first (a late one goes straight back). */
  async function checkout(control: CallControl): Promise<PoolConnection> {
    const p = await open()
    if (control.signal.aborted) throw new NotSentError('given up before a connection was free')
    return new Promise<PoolConnection>((resolve, reject) => {
      let given = false
      const onAbort = () => {
        given = true
        reject(new NotSentError('given up before a connection was free'))
      }
      control.signal.addEventListener('abort', onAbort, { once: true })
      p.getConnection((error, connection) => {
        control.signal.removeEventListener('abort', onAbort)
        if (given) {
          connection?.release()
          return
        }
        if (error) reject(error)
        else resolve(connection)
      })
    })
  }

  /**
   * One statement on one connection, bounded by the caller's deadline: when the caller gives up
   * first, the connection is closed (mysql2 would otherwise keep it busy until the server
   * answers), so timed-out work never holds a pool slot.
   */
  async function query(sql: string, values: unknown[], control: CallControl): Promise<unknown> {
    const connection = await checkout(control)
    control.sent = true
    return new Promise((resolve, reject) => {
      let settled = false
      const onAbort = () => {
        if (settled) return
        settled = true
        connection.destroy()
        reject(new Error('no reply before the deadline; the connection was closed'))
      }
      control.signal.addEventListener('abort', onAbort, { once: true })
      connection.query({ sql, values }, (error, results) => {
        control.signal.removeEventListener('abort', onAbort)
        if (settled) return
        settled = true
        if (error) reject(error)
        else resolve(results)
        const e = error as MysqlErrorLike | null
        if (!e) connection.release()
        else if (e.fatal === true || e.sqlState === undefined) connection.destroy()
        else {
          // The procedures roll back before they re-raise, but an interrupted one may not have:
          // never hand a connection back inside a transaction.
          connection.query('ROLLBACK', (rollbackError) => (rollbackError ? connection.destroy() : connection.release()))
        }
      })
    })
  }

  /** The single value a procedure SELECTs last (CALL answers [rows, header]). */
  async function call(sql: string, values: unknown[], control: CallControl): Promise<unknown> {
    const results = (await query(sql, values, control)) as [Record<string, unknown>[], unknown]
    const value = results[0]?.[0]?.reply
    return Buffer.isBuffer(value) ? value.toString('utf8') : value
  }

  const hex = (keys: Buffer[]) => keys.map((key) => key.toString('hex')).join(',')
  const list = (items: (number | null)[]) => items.map((item) => (item === null ? '' : String(item))).join(',')

  return {
    dialect: 'mysql',

    async migrate(control) {
      const check = `SELECT COUNT(*) AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME = ?`
      // The last routine made: when it exists, everything before it does too.
      const [row] = (await query(check, [names.releaseLock.slice(1, -1)], control)) as { n: number }[]
      if (Number(row?.n) > 0) return
      // Each statement is IF NOT EXISTS: processes starting together can all run them.
      for (const statement of mysqlMigration(settings.table)) await query(statement, [], control)
    },

    async now(control) {
      const [row] = (await query(MYSQL_NOW, [], control)) as { now_ms: string }[]
      return Number(row?.now_ms)
    },

    async apply(args, deadline, control) {
      // Keys whose row this call may create: an op that adds to or takes from a counter it may
      // create, and the idempotency record.
      const creatable = new Set<string>()
      args.keys.forEach((key, i) => {
        if (!args.report[i] && args.deltas[i] !== 0) creatable.add(key.toString('hex'))
      })
      if (args.idempotencyKey) creatable.add(args.idempotencyKey.toString('hex'))
      const values = [
        hex(args.keys),
        list(args.deltas),
        list(args.bounds),
        list(args.ttls),
        args.report.map((report) => (report ? '1' : '0')).join(','),
        args.holdIds.map((id) => (id === null ? '' : id.toString('hex'))).join(','),
        list(args.holdMs),
        args.settleIds.map((id) => (id === null ? '' : id.toString('hex'))).join(','),
        list(args.keep),
        hex(args.lockOrder),
        args.lockOrder.map((key) => (creatable.has(key.toString('hex')) ? '1' : '0')).join(','),
        args.idempotencyKey,
        args.idempotencyTtlMs,
        args.clearKey,
        deadline,
      ]
      return String(await call(`CALL ${names.apply}(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, values, control))
    },

    async write(routine, deadline, control) {
      let reply: unknown
      switch (routine.name) {
        case 'seed':
        case 'set':
          reply = await call(`CALL ${routine.name === 'seed' ? names.seed : names.set}(?, ?, ?, ?)`, [routine.key, routine.value, routine.ttlMs, deadline], control)
          break
        case 'delete':
          reply = await call(`CALL ${names.delete}(?, ?)`, [routine.key, deadline], control)
          break
        case 'acquireLock':
          reply = await call(`CALL ${names.acquireLock}(?, ?, ?, ?)`, [routine.key, routine.token, routine.ttlMs, deadline], control)
          break
        case 'releaseLock':
          reply = await call(`CALL ${names.releaseLock}(?, ?, ?)`, [routine.key, routine.token, deadline], control)
          break
      }
      return Number(reply) === 1
    },

    async get(key, deadline, control) {
      const [row] = (await query(getText, [key], control)) as { value: string; ttl_ms: string | null; stale: number }[]
      if (!row) return undefined
      // Expired holds: their units come back (a write, under the row lock) before the read.
      if (Number(row.stale) === 1) return parseGetReply(String(await call(`CALL ${names.get}(?, ?)`, [key, deadline], control)))
      return { value: String(row.value), ttlMs: row.ttl_ms === null ? null : String(row.ttl_ms) }
    },

    classify(error, control): FailureKind {
      if (error instanceof NotSentError) return 'not-sent'
      const e = error as MysqlErrorLike | null
      const errno = typeof e?.errno === 'number' ? e.errno : undefined
      if (errno !== undefined && SESSION_ENDED.has(errno)) return control.sent ? 'unknown' : 'not-sent'
      if (e?.fatal === true || typeof e?.sqlState !== 'string') return control.sent ? 'unknown' : 'not-sent'
      // The server answered with an error: every procedure rolls back before it re-raises.
      if (errno === ER_LOCK_DEADLOCK) return 'conflict'
      if (errno === ER_LOCK_WAIT_TIMEOUT || errno === ER_CON_COUNT_ERROR || (errno !== undefined && STATEMENT_TIME_LIMIT.has(errno))) {
        return 'rolled-back-transient'
      }
      if (e.sqlState === '45000' && String(e.sqlMessage).startsWith(DEADLINE_MESSAGE)) return 'rolled-back-transient'
      return 'rolled-back'
    },

    async close() {
      closed = true
      await opening?.catch(() => {})
      const p = pool
      pool = undefined
      if (p) await new Promise<void>((resolve) => p.end(() => resolve()))
    },
  }
}
