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
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import type { Quota } from '@andromeda/core'
import { freePort } from '@andromeda/test-utils'
import { Redis } from 'ioredis'
import { createFlashSale } from './app.js'
import { FAULT_KINDS, type Fault, heldVoucherUnits, injectFaults, type ServiceState } from './chaos/faults.js'
import { type LoadResult, runLoad } from './chaos/load.js'
import { OwnedRedis } from './chaos/redis-server.js'
import { ServiceProcess } from './chaos/service.js'
import { type Database, openDatabase } from './db.js'
import { openStore, redact, type StoreHandle } from './store.js'
import { percentile, random, table, tally, total } from './tools.js'

const HELP = `Usage: pnpm chaos [options]

  --quick            CI size: 20 s, 2,500 requests, 2 vouchers of 40
  --cluster          on a Redis Cluster with replicas, failing primaries over (--cluster --help)
  --duration S       seconds of load and faults (default 60)
  --requests N       most requests to send, paced over the duration (default 8000)
  --seed N           seed of the fault schedule and of the claims (default: random, printed)
  --vouchers N       vouchers on sale (default 3)
  --limit N          units per voucher (default 100)
  --users N          distinct users (default 1500)
  --concurrency N    requests in flight (default 48)
  --unclaim-ratio P  share of requests that unclaim a held voucher, 0..1 (default 0.2)
  --hold-ms N        how long a claim's units are held before they come back by themselves (default 2500)
  --timeout-ms N     client-side bound of one request (default 10000)
  --no-batch         the Redis store sends each call on its own (batch: false) instead of one
                     script call per tick
  --database-url URL default: DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test
  --redis-server P   the redis-server binary (default: redis-server on PATH)
  --help
`

interface Settings {
  durationMs: number
  requests: number
  seed: number
  vouchers: number
  limit: number
  users: number
  concurrency: number
  unclaimRatio: number
  holdMs: number
  timeoutMs: number
  databaseUrl: string
  redisServer: string
  /** The Redis store's `batch` option: coalescing on (the default) or off. */
  batch: boolean
}

class UsageError extends Error {}

function settingsFrom(argv: string[]): Settings | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      duration: { type: 'string' },
      requests: { type: 'string' },
      seed: { type: 'string' },
      vouchers: { type: 'string' },
      limit: { type: 'string' },
      users: { type: 'string' },
      concurrency: { type: 'string' },
      'unclaim-ratio': { type: 'string' },
      'hold-ms': { type: 'string' },
      'timeout-ms': { type: 'string' },
      'database-url': { type: 'string' },
      'redis-server': { type: 'string' },
      'no-batch': { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  })
  if (values.help) return undefined
  const quick = values.quick === true
  const count = (name: keyof typeof values, fallback: number, min: number) => {
    const raw = values[name]
    if (raw === undefined) return fallback
    const n = Number(raw)
    if (!Number.isSafeInteger(n) || n < min)
      throw new UsageError(`--${name} must be an integer >= ${min}, got "${String(raw)}"`)
    return n
  }
  const ratio = Number(values['unclaim-ratio'] ?? 0.2)
  if (!(ratio >= 0 && ratio <= 1))
    throw new UsageError(`--unclaim-ratio must be between 0 and 1, got "${values['unclaim-ratio']}"`)
  return {
    durationMs: count('duration', quick ? 20 : 60, 5) * 1000,
    requests: count('requests', quick ? 2500 : 8000, 1),
    seed: count('seed', randomBytes(4).readUInt32BE() % 1_000_000, 0),
    vouchers: count('vouchers', quick ? 2 : 3, 1),
    limit: count('limit', quick ? 40 : 100, 1),
    users: count('users', quick ? 600 : 1500, 1),
    concurrency: count('concurrency', quick ? 32 : 48, 1),
    unclaimRatio: ratio,
    holdMs: count('hold-ms', 2500, 100),
    timeoutMs: count('timeout-ms', 10_000, 100),
    databaseUrl: values['database-url'] ?? (process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'),
    redisServer: values['redis-server'] ?? 'redis-server',
    batch: values['no-batch'] !== true,
  }
}

/** Wait until the store answers again after the last fault (bounded). */
async function storeReady(vouchers: Quota, code: string): Promise<void> {
  const deadline = Date.now() + 15_000
  for (;;) {
    try {
      await vouchers.get(code)
      return
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the store did not recover within 15 s: ${(error as Error).message}`)
      await sleep(100)
    }
  }
}

/** What the checks read, in this process: the tables, the Redis keys, the voucher quota as the service defines it. */
interface Observer {
  db: Database
  store: StoreHandle
  vouchers: Quota
  admin: Redis
  keyPrefix: string
  codes: string[]
}

/** Per voucher: the claims the clients hold vs the rows; limit, live counter, synced usage, reloaded counter vs the rows. */
async function check(
  o: Observer,
  load: LoadResult,
  faults: Fault[],
  serviceErrors: Map<string, number>,
  holdMs: number,
): Promise<string[]> {
  const failures: string[] = []
  const rows: string[][] = []
  let lowUnits = 0
  // The hold time has passed: every hold of a killed claim must have come back by now.
  const live = new Map<string, number>()
  for (const code of o.codes) live.set(code, (await o.vouchers.get(code)).usage)
  const holdsLeft = await heldVoucherUnits(o.admin, o.keyPrefix, o.codes)
  // Every counter goes (as a Redis restart would take them); `get` must reload them from the claim rows.
  await o.store.deleteOwnKeys()
  for (const voucher of await o.db.vouchers()) {
    const users = (pairs: Set<string>) =>
      new Set([...pairs].flatMap((pair) => (pair.endsWith(` ${voucher.code}`) ? [pair.split(' ')[0]!] : [])))
    const granted = users(load.held)
    const inDoubt = users(load.inDoubt)
    const claimRows = new Set(await o.db.claimUsers(voucher.code))
    const reloaded = (await o.vouchers.get(voucher.code)).usage
    const counter = live.get(voucher.code)!
    const grantedNoRow = [...granted].filter((user) => !claimRows.has(user) && !inDoubt.has(user))
    const rowNotGranted = [...claimRows].filter((user) => !granted.has(user) && !inDoubt.has(user))
    const problems: string[] = []
    if (claimRows.size > voucher.limit) problems.push('OVERSOLD')
    if (grantedNoRow.length > 0 || rowNotGranted.length > 0) problems.push('GRANTED≠ROWS')
    // After the hold time the live counter holds committed units only: above the rows is a
    // leaked unit. Below them is possible: a claim killed between its row and its commit leaves
    // a row whose hold lapsed, and the database's guard refuses what that lets through (the
    // first claim it refuses charges the unit back, see app.ts).
    if (counter > claimRows.size) problems.push('LEAKED')
    lowUnits += Math.max(claimRows.size - counter, 0)
    if (voucher.usage !== counter) problems.push('SYNCED≠COUNTER')
    if (reloaded !== claimRows.size) problems.push('RELOADED≠ROWS')
    for (const p of problems) {
      failures.push(
        `${voucher.code}: ${p} (limit ${voucher.limit}, granted ${granted.size}, in doubt ${inDoubt.size}, rows ${claimRows.size}, ` +
          `counter ${counter}, synced ${voucher.usage}, reloaded ${reloaded}; granted without a row: ${grantedNoRow.join(' ') || '-'}, ` +
          `rows never granted: ${rowNotGranted.join(' ') || '-'})`,
      )
    }
    const cells = [granted.size, inDoubt.size, claimRows.size, voucher.usage, counter, reloaded].map(String)
    rows.push([voucher.code, String(voucher.limit), ...cells, problems.length ? problems.join(',') : 'ok'])
  }

  console.log('\nfaults injected')
  const width = Math.max(...FAULT_KINDS.map((kind) => kind.length))
  console.log(`${'kind'.padEnd(width)}  count  at (seconds since the load began)`)
  for (const kind of FAULT_KINDS) {
    const mine = faults.filter((f) => f.kind === kind)
    const times = mine.map((f) => `${f.at.toFixed(1)}${f.detail ? ` (${f.detail})` : ''}`).join(', ')
    console.log(`${kind.padEnd(width)}  ${String(mine.length).padStart(5)}  ${times || '-'}`)
  }
  const kills = faults.filter((f) => f.kind === 'service-kill' && f.inFlight !== undefined)
  const failedFaults = faults.filter((f) => f.detail.startsWith('FAILED'))
  if (faults.length === 0) failures.push('no fault was injected')
  if (failedFaults.length > 0) failures.push(`${failedFaults.length} fault(s) could not be injected`)
  // Holds of a dead process can only come back by expiring: the live counters at the end (no
  // LEAKED, no holds left) check that for every kill, so one kill that caught holds suffices.
  if (!kills.some((kill) => (kill.heldUnits ?? 0) > 0))
    failures.push('no service kill caught the service holding voucher units')

  console.log(
    `\nvouchers (counter: live, ${holdMs} ms after the load; reloaded: after every key was deleted; in doubt: cut by a kill)`,
  )
  console.log(
    table(
      ['voucher', 'limit', 'granted', 'in doubt', 'claim rows', 'synced usage', 'counter', 'reloaded', 'check'],
      rows,
    ),
  )

  const sorted = [...load.latenciesMs].sort((a, b) => a - b)
  const ms = (v: number) => `${v.toFixed(0)} ms`
  const sum = (key: 'inFlight' | 'heldUnits') => kills.reduce((n, f) => n + (f[key] ?? 0), 0)
  console.log('')
  console.log(
    `requests       ${load.sent} in ${(load.durationMs / 1000).toFixed(1)} s (${load.claims} claims, ${load.unclaims} unclaims)`,
  )
  console.log(`granted        ${load.held.size} held at the end`)
  console.log(`refused        ${tally(load.refused)}`)
  console.log(`typed errors   ${tally(load.typed)}`)
  console.log(`lost in kills  ${tally(load.lost)}`)
  console.log(`untyped errors ${tally(load.untyped)}`)
  console.log(`hung           ${load.hung}`)
  console.log(
    `latency        p50 ${ms(percentile(sorted, 50))}  p99 ${ms(percentile(sorted, 99))}  max ${ms(sorted.at(-1) ?? Number.NaN)}`,
  )
  console.log(
    `service kills  ${kills.length}: ${sum('inFlight')} requests in flight, ${sum('heldUnits')} voucher units held when they died`,
  )
  console.log(`holds left     ${holdsLeft} voucher units still held ${holdMs} ms after the load`)
  console.log(
    `counters low   ${lowUnits} unit(s) below the claim rows (rows whose holds lapsed before their commit: the database's guard covers them)`,
  )
  console.log(
    `service errors ${tally(serviceErrors)} (logged by the service: failed settles, refunds, sync writes, 5xx)`,
  )

  if (holdsLeft > 0) failures.push(`${holdsLeft} voucher unit(s) still held after the hold time`)
  if (load.hung > 0) failures.push(`${load.hung} request(s) hung past the bound`)
  if (total(load.untyped) > 0) failures.push(`${total(load.untyped)} untyped error(s): ${tally(load.untyped)}`)
  if (load.held.size === 0) failures.push('no claim was granted: the load did not reach the service')
  return failures
}

async function main(): Promise<number> {
  if (process.argv.includes('--cluster'))
    return (await import('./chaos-cluster.js')).clusterChaos(
      process.argv.slice(2).filter((a) => a !== '--' && a !== '--cluster'),
    )
  let s: Settings | undefined
  try {
    s = settingsFrom(process.argv.slice(2).filter((arg) => arg !== '--'))
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${HELP}`)
    return 2
  }
  if (!s) {
    console.log(HELP)
    return 0
  }

  const interrupt = new AbortController()
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupt.signal.aborted) return
    console.error(`\n${signal}: stopping the load and the faults, then cleaning up...`)
    interrupt.abort(new Error(signal))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  const runId = randomBytes(4).toString('hex')
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
      redisUrl: redis.url,
      tablePrefix,
      keyPrefix,
      vouchers: codes.map((code) => ({ code, limit: s!.limit })),
      holdMs: s.holdMs,
      attemptsPerMinute: null,
      batch: s.batch,
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
      signal: AbortSignal.any([stopFaults.signal, interrupt.signal]),
    })
    const progress = setInterval(() => {
      const elapsed = (performance.now() - startedAt) / 1000
      process.stderr.write(` ${elapsed.toFixed(0)} s / ${s!.durationMs / 1000} s\n`)
    }, 5000)
    let load: LoadResult
    try {
      const options = { ...s, url: service.url, codes }
      load = await runLoad(options, state, random(s.seed ^ 0x5eed), interrupt.signal)
    } finally {
      clearInterval(progress)
      stopFaults.abort()
    }
    const faults = await faultsDone
    if (!interrupt.signal.aborted) {
      // The end: the last fault is over. Wait for the store, let every hold of the run lapse,
      // then stop the service (final sync flush) and check.
      await storeReady(vouchers, codes[0]!)
      await sleep(s.holdMs + 250)
      await service.stop()
      failures.push(...(await check(observer, load, faults, service.errors, s.holdMs)))
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
      await cleanup().catch((error: Error) => {
        failures.push(`cleanup failed: ${error.message}`)
      })
    }
    await redis.dispose()
  }
  if (interrupt.signal.aborted) {
    console.error('interrupted: load and faults stopped, service stopped, tables dropped, redis-server stopped.')
    return 130
  }
  if (failures.length > 0) {
    console.log(`\nFAILED (seed ${s.seed}):\n  ${failures.join('\n  ')}`)
    return 1
  }
  console.log(
    `\nok (seed ${s.seed}): no voucher oversold, no unit leaked, no hold left, no request hung, every error typed; granted claims and reloaded counters agree with the claim rows.`,
  )
  return 0
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(`chaos failed: ${error.message}`)
    process.exit(1)
  },
)
