import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { pathToFileURL } from 'node:url'
import { createFlashSale, type FlashSale, type FlashSaleOptions } from './app.js'
import { exitAfterOutput } from './cli.js'
import { type Database, openDatabase } from './db.js'
import { openStore, type StoreHandle, type StoreOptions } from './store.js'

export interface ServerConfig {
  /** PostgreSQL URL; omitted: embedded PGlite in memory. */
  databaseUrl?: string
  /** The counter store: Redis by URL or cluster nodes; omitted: the memory store. */
  store?: StoreOptions
  /** Default 0: a free port. */
  port?: number
  /** Default 127.0.0.1. */
  host?: string
  /** Prefix of the table names. Default `andromeda_demo_`. */
  tablePrefix?: string
  /** Vouchers to create (or whose limit to set) at start. */
  vouchers?: { code: string; limit: number }[]
  syncIntervalMs?: number
  /** How long a claim holds its units until its row is in (ms). Default 60,000. */
  holdMs?: number
  attemptsPerMinute?: number | null
  onError?: FlashSaleOptions['onError']
}

export interface RunningServer {
  /** e.g. `http://127.0.0.1:41234` */
  url: string
  sale: FlashSale
  db: Database
  store: StoreHandle
  /** Stop accepting requests and finish those in flight, cut after `graceMs` (default 2000). Safe to call twice. */
  closeHttp(graceMs?: number): Promise<void>
  /**
   * Stop accepting requests, finish those in flight (cut after `graceMs`), stop the sync with
   * a final flush, then close the store and the database. Safe to call twice.
   */
  stop(options?: { graceMs?: number; dropTables?: boolean; deleteKeys?: boolean }): Promise<void>
}

/** Open the database and the store, build the service, listen, and start the usage sync. */
export async function startServer(config: ServerConfig = {}): Promise<RunningServer> {
  const db = await openDatabase({ url: config.databaseUrl, tablePrefix: config.tablePrefix })
  let store: StoreHandle | undefined
  try {
    // The store first: one that cannot connect leaves no tables behind.
    store = await openStore(config.store)
    await db.migrate()
    if (config.vouchers?.length) await db.upsertVouchers(config.vouchers)
  } catch (error) {
    await store?.close().catch(() => {})
    await db.close().catch(() => {})
    throw error
  }
  const sale = createFlashSale({
    db,
    store: store.store,
    syncIntervalMs: config.syncIntervalMs,
    holdMs: config.holdMs,
    attemptsPerMinute: config.attemptsPerMinute,
    onError: config.onError,
  })
  const server = createServer({ keepAliveTimeout: 10_000 }, sale.app)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(config.port ?? 0, config.host ?? '127.0.0.1', () => resolve())
  })
  sale.sync.start()
  const { address, port } = server.address() as AddressInfo
  const openStoreHandle = store

  let closing: Promise<void> | undefined
  const closeHttp = (graceMs = 2000) => {
    closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      const cut = setTimeout(() => server.closeAllConnections(), graceMs)
      await closed
      clearTimeout(cut)
    })()
    return closing
  }
  let stopping: Promise<void> | undefined
  return {
    url: `http://${address}:${port}`,
    sale,
    db,
    store: openStoreHandle,
    closeHttp,
    stop(options = {}) {
      stopping ??= (async () => {
        await closeHttp(options.graceMs)
        // The final flush: usage reaches the database before anything closes.
        await sale.sync.stop()
        if (options.deleteKeys) await openStoreHandle.deleteOwnKeys()
        await openStoreHandle.close()
        if (options.dropTables) await db.dropTables()
        await db.close()
      })()
      return stopping
    },
  }
}

/** `pnpm start`: PORT, DATABASE_URL, REDIS_URL, VOUCHERS="SUMMER=100,WINTER=50". */
async function main(): Promise<void> {
  const vouchers = (process.env.VOUCHERS ?? 'SUMMER=100')
    .split(',')
    .filter(Boolean)
    .map((pair) => {
      const [code, limit] = pair.split('=')
      return { code: code!.trim(), limit: Number(limit) }
    })
  const running = await startServer({
    port: Number(process.env.PORT ?? 3000),
    databaseUrl: process.env.DATABASE_URL || undefined,
    store: { url: process.env.REDIS_URL || undefined },
    vouchers,
  })
  console.log(`flash-sale listening on ${running.url} (${running.db.kind}, ${running.store.kind} store)`)
  const shutdown = (signal: string) => {
    console.log(`\n${signal}: stopping (final usage sync)...`)
    running.stop().then(
      () => exitAfterOutput(0),
      (error: Error) => {
        console.error(`stop failed: ${error.message}`)
        exitAfterOutput(1)
      },
    )
  }
  process.once('SIGINT', shutdown)
  process.once('SIGTERM', shutdown)
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: Error) => {
    console.error(`flash-sale: ${error.message}`)
    exitAfterOutput(1)
  })
}
