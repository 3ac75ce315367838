/**
 * `pnpm chaos`: run the flash-sale service as a child process on a Redis this script owns (a
 * `redis-server` on a free loopback port) and PostgreSQL, keep claims and unclaims flowing, and
 * meanwhile SIGKILL the service in the middle of claims and start it again, restart Redis
 * (every counter is lost), flush its script cache, pause its clients and drop their
 * connections, on a seeded schedule that always ends with a service kill. Then, once the hold
 * time has passed, check that no voucher was oversold, no hold is left and no unit leaked (no
 * live counter above its claim rows; counters reloaded from the database equal them), no
 * request hung, every error was a typed one, and the claims the clients were granted are the
 * claim rows. Exits 0 when every check holds, 1 otherwise, 130 when interrupted. Bounded in
 * time (`--duration`) and in count (`--requests`); loopback only.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '@andromeda/test-utils'
import { Redis } from 'ioredis'
import { createFlashSale } from './app.js'
import { checkChaosRun, type Observer } from './chaos/check.js'
import { injectFaults, type ServiceState } from './chaos/faults.js'
import { type LoadResult, runLoad } from './chaos/load.js'
import { LOAD_FLAGS, type LoadSettings, loadFlagsHelp, loadSettings } from './chaos/load-settings.js'
import { OwnedRedis } from './chaos/redis-server.js'
import { ServiceProcess } from './chaos/service.js'
import { storeReady } from './chaos/store-ready.js'
import {
  cleanupFailed,
  endOfRun,
  flagOptions,
  integerFlag,
  readFlags,
  runCommand,
  startRun,
  stringFlag,
} from './cli.js'
import { openDatabase } from './db.js'
import { openStore, redact } from './store.js'
import { random } from './tools.js'

const HELP = `Usage: pnpm chaos [options]

  --quick            CI size: 20 s, 2,500 requests, 2 vouchers of 40
  --cluster          on a Redis Cluster with replicas, failing primaries over (--cluster --help)
${loadFlagsHelp('faults', 8000)}  --hold-ms N        how long a claim's units are held before they come back by themselves (default 2500)
  --no-batch         the Redis store sends each call on its own (batch: false) instead of one
                     script call per tick
  --redis-server P   the redis-server binary (default: redis-server on PATH)
  --help
`

interface Settings extends LoadSettings {
  holdMs: number
  redisServer: string
  /** The Redis store's `batch` option: coalescing on (the default) or off. */
  batch: boolean
}

function settingsFrom(argv: string[]): Settings | undefined {
  const values = readFlags(argv, { ...LOAD_FLAGS, ...flagOptions(['hold-ms', 'redis-server'], ['no-batch']) })
  if (!values) return undefined
  return {
    ...loadSettings(values, { quick: 2500, full: 8000 }),
    holdMs: integerFlag(values, 'hold-ms', 2500, 100),
    redisServer: stringFlag(values, 'redis-server') ?? 'redis-server',
    batch: values['no-batch'] !== true,
  }
}

async function main(): Promise<number> {
  if (process.argv.includes('--cluster'))
    return (await import('./chaos-cluster.js')).clusterChaos(
      process.argv.slice(2).filter((a) => a !== '--' && a !== '--cluster'),
    )
  const run = startRun(
    HELP,
    () => settingsFrom(process.argv.slice(2)),
    'stopping the load and the faults, then cleaning up...',
  )
  if (typeof run === 'number') return run
  const { settings: s, interrupted, runId } = run
  const codes = Array.from({ length: s.vouchers }, (_, i) => `CHAOS-${i + 1}`)
  const tablePrefix = `andromeda_chaos_${runId}_`
  const keyPrefix = `andromeda-chaos:${runId}:`
  const redis = await OwnedRedis.create(s.redisServer)
  const failures: string[] = []
  let service: ServiceProcess | undefined
  let observer: Observer | undefined
  // Never leave the service running behind this process, however it ends.
  process.once('exit', () => service?.killNow())
  try {
    await redis.start()
    console.log(
      `flash-sale chaos: seed ${s.seed}, ${s.durationMs / 1000} s, up to ${s.requests} requests, concurrency ${s.concurrency}`,
    )
    console.log(
      `${s.vouchers} voucher(s) of ${s.limit}, ${s.users} users, unclaim ratio ${s.unclaimRatio}, hold ${s.holdMs} ms, request bound ${s.timeoutMs} ms`,
    )
    console.log(
      `on ${redis.url} (own redis-server, pid ${redis.pid}, batching ${s.batch ? 'on' : 'off'}) + PostgreSQL ${redact(s.databaseUrl)}`,
    )

    const db = await openDatabase({ url: s.databaseUrl, tablePrefix, poolSize: 2 })
    await db.migrate()
    const store = await openStore({ url: redis.url, prefix: keyPrefix, batch: s.batch })
    const admin = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 })
    admin.on('error', () => {})
    const { vouchers } = createFlashSale({
      db,
      store: store.store,
      holdMs: s.holdMs,
      attemptsPerMinute: null,
      onError: () => {},
    })
    observer = { db, store, vouchers, admin, keyPrefix, codes }

    service = new ServiceProcess({
      port: await freePort(),
      databaseUrl: s.databaseUrl,
      store: { url: redis.url, prefix: keyPrefix, batch: s.batch },
      tablePrefix,
      vouchers: codes.map((code) => ({ code, limit: s!.limit })),
      holdMs: s.holdMs,
      attemptsPerMinute: null,
    })
    await service.start()
    console.log(`service on ${service.url} (a child process)\n`)

    // Two streams from one seed: the fault schedule does not shift when the load's timing does.
    const state: ServiceState = { life: 0, down: false, inFlight: 0 }
    const stopFaults = new AbortController()
    const startedAt = performance.now()
    const faultsDone = injectFaults({
      redis,
      service,
      state,
      keyPrefix,
      codes,
      next: random(s.seed),
      startedAt,
      endAt: startedAt + s.durationMs,
      gapMs: s.durationMs <= 30_000 ? [300, 1000] : [1000, 3500],
      signal: AbortSignal.any([stopFaults.signal, interrupted]),
    })
    const progress = setInterval(() => {
      const elapsed = (performance.now() - startedAt) / 1000
      process.stderr.write(` ${elapsed.toFixed(0)} s / ${s!.durationMs / 1000} s\n`)
    }, 5000)
    let load: LoadResult
    try {
      const options = { ...s, url: service.url, codes }
      load = await runLoad(options, state, random(s.seed ^ 0x5eed), interrupted)
    } finally {
      clearInterval(progress)
      stopFaults.abort()
    }
    const faults = await faultsDone
    if (!interrupted.aborted) {
      // The end: the last fault is over. Wait for the store, let every hold of the run lapse,
      // then stop the service (final sync flush) and check.
      await storeReady(vouchers, codes)
      await sleep(s.holdMs + 250)
      await service.stop()
      failures.push(...(await checkChaosRun(observer, load, faults, service.errors, s.holdMs)))
    }
  } finally {
    await service?.kill()
    if (observer) {
      const { db, store, admin } = observer
      const cleanup = async () => {
        await store.deleteOwnKeys()
        await store.close()
        admin.disconnect()
        await db.dropTables()
        await db.close()
      }
      await cleanup().catch(cleanupFailed(failures))
    }
    await redis.dispose()
  }
  return endOfRun({
    interrupted: interrupted.aborted,
    stopped: 'load and faults stopped, service stopped, tables dropped, redis-server stopped.',
    failures,
    held: 'no voucher oversold, no unit leaked, no hold left, no request hung, every error typed; granted claims and reloaded counters agree with the claim rows.',
    seed: s.seed,
  })
}

runCommand('chaos', main)
