import type { Pool, PoolConnection, PoolOptions } from 'mysql2'
import { type CallControl, NotSentError } from './driver.js'
import { closeLazyPool, type LazyPool, lazyPool, openPool } from './lazy-pool.js'
import type { MysqlErrorLike } from './mysql-errors.js'

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

/** What the pool is opened with. */
export interface MysqlPoolSettings {
  /** The @keyv/mysql adapter's `opts`: its connection URI and mysql2 pool options. */
  adapterOptions: Record<string, unknown>
  commandTimeoutMs: number
}

/** The store's own mysql2 pool, opened on first use; see `createMysqlDriver`. */
export type MysqlPool = LazyPool<MysqlPoolSettings, Pool>

export const mysqlPool = (settings: MysqlPoolSettings): MysqlPool => lazyPool(settings)

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

/** mysql2's options: the URI's and the adapter's, less its own, with the connect wait bounded by the store's timeout. */
function poolConfig(settings: MysqlPoolSettings): PoolOptions {
  const config: PoolOptions = parseUri(String(settings.adapterOptions.uri ?? 'mysql://localhost'))
  for (const [key, value] of Object.entries(settings.adapterOptions))
    if (!ADAPTER_ONLY.includes(key)) (config as Record<string, unknown>)[key] = value
  // One statement per query, always: values are escaped, but a second statement is never wanted.
  config.multipleStatements = false
  config.connectTimeout = Math.min(Number(config.connectTimeout) || Number.POSITIVE_INFINITY, settings.commandTimeoutMs)
  return config
}

function open(p: MysqlPool): Promise<Pool> {
  return openPool(p, async (settings) => {
    const mysql = (await import('mysql2')) as unknown as {
      default?: { createPool: (o: PoolOptions) => Pool }
      createPool?: (o: PoolOptions) => Pool
    }
    const createPool = mysql.default?.createPool ?? mysql.createPool!
    const config = poolConfig(settings)
    // InnoDB counts lock waits in whole seconds.
    const lockWaitSeconds = Math.min(Math.max(Math.ceil(settings.commandTimeoutMs / 1000), 1), 1_073_741_824)
    return () => {
      const created = createPool(config)
      created.on('connection', (connection) => {
        connection.on('error', () => {})
        // Queued before any query of ours.
        connection.query(`SET SESSION innodb_lock_wait_timeout = ${lockWaitSeconds}`, () => {})
      })
      return created
    }
  })
}

/** A connection, or NotSentError when the caller gave up first (a late one goes straight back). */
async function checkout(p: MysqlPool, control: CallControl): Promise<PoolConnection> {
  const pool = await open(p)
  if (control.signal.aborted) throw new NotSentError('given up before a connection was free')
  return new Promise<PoolConnection>((resolve, reject) => {
    let given = false
    const onAbort = () => {
      given = true
      reject(new NotSentError('given up before a connection was free'))
    }
    control.signal.addEventListener('abort', onAbort, { once: true })
    pool.getConnection((error, connection) => {
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
export async function query(p: MysqlPool, sql: string, values: unknown[], control: CallControl): Promise<unknown> {
  const connection = await checkout(p, control)
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
      giveBack(connection, error)
    })
  })
}

/** Back to the pool when it is sure to be usable and outside a transaction; closed otherwise. */
function giveBack(connection: PoolConnection, error: unknown): void {
  const e = error as MysqlErrorLike | null
  if (!e) connection.release()
  else if (e.fatal === true || e.sqlState === undefined) connection.destroy()
  else {
    // The procedures roll back before they re-raise, but an interrupted one may not have:
    // never hand a connection back inside a transaction.
    connection.query('ROLLBACK', (rollbackError) => (rollbackError ? connection.destroy() : connection.release()))
  }
}

/** The single value a procedure SELECTs last (CALL answers [rows, header]). */
export async function call(p: MysqlPool, sql: string, values: unknown[], control: CallControl): Promise<unknown> {
  const results = (await query(p, sql, values, control)) as [Record<string, unknown>[], unknown]
  const value = results[0]?.[0]?.reply
  return Buffer.isBuffer(value) ? value.toString('utf8') : value
}

export const closePool = (p: MysqlPool): Promise<void> =>
  closeLazyPool(p, (pool) => new Promise<void>((resolve) => pool.end(() => resolve())))
