import type { Pool, PoolClient, PoolConfig, QueryConfig } from 'pg'
import { type CallControl, NotSentError, remainingMs } from './driver.js'
import { closeLazyPool, type LazyPool, lazyPool, openPool } from './lazy-pool.js'
import { breaksConnection } from './postgres-errors.js'

/** Options of @keyv/postgres that are its own, not pg's. */
const ADAPTER_ONLY = ['uri', 'table', 'schema', 'keySize', 'dialect', 'iterationLimit', 'useUnloggedTable']

/** What the pool is opened with. */
export interface PostgresPoolSettings {
  /** The @keyv/postgres adapter's `opts`: its connection URI and pg pool options. */
  adapterOptions: Record<string, unknown>
  commandTimeoutMs: number
  /** Longest lock wait of one statement: the time the database has for a call sent at once. */
  lockTimeoutMs: number
}

/** The store's own pg `Pool`, opened on first use; see `createPostgresDriver`. */
export type PostgresPool = LazyPool<PostgresPoolSettings, Pool>

export const postgresPool = (settings: PostgresPoolSettings): PostgresPool => lazyPool(settings)

/** pg's options: the adapter's, less its own, with the connection wait bounded by the store's timeout. */
function poolConfig(settings: PostgresPoolSettings): PoolConfig {
  const config: PoolConfig = {}
  for (const [key, value] of Object.entries(settings.adapterOptions))
    if (!ADAPTER_ONLY.includes(key)) (config as Record<string, unknown>)[key] = value
  config.connectionString = settings.adapterOptions.uri as string
  // A caller gives up after commandTimeoutMs: never queue for a connection longer.
  config.connectionTimeoutMillis = Math.min(
    Number(config.connectionTimeoutMillis) || Number.POSITIVE_INFINITY,
    settings.commandTimeoutMs,
  )
  config.allowExitOnIdle ??= true
  return config
}

function open(p: PostgresPool): Promise<Pool> {
  return openPool(p, async (settings) => {
    const pg = (await import('pg')) as unknown as { default?: { Pool: typeof Pool }; Pool?: typeof Pool }
    const PoolClass = pg.default?.Pool ?? pg.Pool!
    const config = poolConfig(settings)
    return () => {
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
      return created
    }
  })
}

/** A client, or NotSentError when the caller gave up first (a late client goes straight back). */
async function checkout(p: PostgresPool, control: CallControl): Promise<PoolClient> {
  const pool = await open(p)
  if (control.signal.aborted) throw new NotSentError('given up before a connection was free')
  const pending = pool.connect()
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
export async function query(
  p: PostgresPool,
  text: string,
  values: unknown[],
  control: CallControl,
): Promise<Record<string, unknown>[]> {
  const client = await checkout(p, control)
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
    if (breaksConnection(error)) broken = error
    throw error
  } finally {
    client.off('error', onError)
    client.release(broken as Error | undefined)
  }
}

/**
 * Run `statements` in one transaction on one client. A failed ROLLBACK means the connection is
 * unusable: the client is then destroyed, not returned.
 */
export async function transaction(
  p: PostgresPool,
  control: CallControl,
  statements: (client: PoolClient) => Promise<void>,
): Promise<void> {
  const client = await checkout(p, control)
  const onError = () => {}
  client.on('error', onError)
  let broken: unknown
  try {
    await client.query('BEGIN')
    await statements(client)
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
}

export const closePool = (p: PostgresPool): Promise<void> => closeLazyPool(p, (pool) => pool.end())
