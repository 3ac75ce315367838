import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { CounterStore } from '@andromeda/core'
import pg from 'pg'
import { createFlashSale, type FlashSale } from '../src/app.js'
import { type Database, openDatabase } from '../src/db.js'
import { openStore, type StoreHandle } from '../src/store.js'

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
export const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres'

/** Whether the local Redis and PostgreSQL answer; under CI=true they must, so a failure is thrown. */
export async function servicesAvailable(): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    const store = await openStore({ url: REDIS_URL })
    await store.close()
    const db = await openDatabase({ url: DATABASE_URL })
    try {
      await db.voucherCodes().catch((error: { code?: string }) => {
        if (error.code !== '42P01') throw error // no table yet is fine: the server answered
      })
    } finally {
      await db.close()
    }
    return { ok: true }
  } catch (error) {
    if (process.env.CI === 'true') throw error
    return { ok: false, reason: (error as Error).message }
  }
}

export interface Backend {
  name: string
  redisUrl?: string
  databaseUrl?: string
}

export const BACKENDS: Backend[] = [
  { name: 'memory store + PGlite' },
  { name: 'Redis + PostgreSQL', redisUrl: REDIS_URL, databaseUrl: DATABASE_URL },
]

/** A running service on a free loopback port, over its own tables and keys. */
export interface TestService {
  url: string
  sale: FlashSale
  db: Database
  store: StoreHandle
  errors: unknown[]
  post(path: string, body: unknown): Promise<{ status: number; body: any; headers: Headers }>
  close(): Promise<void>
}

/**
 * Start the app over real HTTP. `wrapDb` and `wrapStore` let a test swap a method (a failing
 * insert, a lost reply); the tables and Redis keys are this service's own and are removed by `close()`.
 */
export async function startTestService(
  backend: Backend,
  options: {
    wrapDb?: (db: Database) => Database
    wrapStore?: (store: CounterStore) => CounterStore
    attemptsPerMinute?: number | null
  } = {},
): Promise<TestService> {
  const run = randomBytes(4).toString('hex')
  const db = await openDatabase({ url: backend.databaseUrl, tablePrefix: `andromeda_test_${run}_` })
  await db.migrate()
  const store = await openStore({ url: backend.redisUrl, prefix: `andromeda-test:${run}:` })
  const errors: unknown[] = []
  const sale = createFlashSale({
    db: options.wrapDb ? options.wrapDb(db) : db,
    store: options.wrapStore ? options.wrapStore(store.store) : store.store,
    attemptsPerMinute: options.attemptsPerMinute === undefined ? null : options.attemptsPerMinute,
    syncIntervalMs: 60_000, // tests flush by hand
    onError: (error) => errors.push(error),
  })
  const server: Server = createServer(sale.app)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url,
    sale,
    db,
    store,
    errors,
    async post(path, body) {
      const response = await fetch(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      })
      const text = await response.text()
      return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers }
    },
    async close() {
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await sale.sync.stop()
      await store.deleteOwnKeys()
      await store.close()
      await db.dropTables()
      await db.close()
    },
  }
}

/**
 * Wait (bounded) until a PostgreSQL session waits on a lock in a statement naming `table`: an
 * interleaving a test sets up, seen from a connection of its own.
 */
export async function waitForLockWait(databaseUrl: string, table: string, timeoutMs = 10_000): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl })
  await client.connect()
  try {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const { rows } = await client.query(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND position($1 in query) > 0`,
        [table],
      )
      if (rows[0].n > 0) return
      if (Date.now() > deadline) throw new Error(`no session waited on a lock over ${table} within ${timeoutMs} ms`)
      await sleep(10)
    }
  } finally {
    await client.end()
  }
}
