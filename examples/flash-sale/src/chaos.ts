/**
 * `pnpm chaos`: run the flash-sale service on a Redis this script owns (a `redis-server` on a
 * free loopback port) and PostgreSQL, keep claims and unclaims flowing, and meanwhile restart
 * Redis (every counter is lost), flush its script cache, pause its clients and drop their
 * connections, on a seeded schedule. Then check that no voucher was oversold, no request hung,
 * every error was a typed one, and granted claims, claim rows, synced usage and counters
 * reloaded from the database all agree. Exits 0 when every check holds, 1 otherwise, 130 when
 * interrupted. Bounded in time (`--duration`) and in count (`--requests`); loopback only.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { Agent, request } from 'undici'
import { type RunningServer, startServer } from './server.js'
import { redact } from './store.js'
import { bump, percentile, random, table, tally, total } from './tools.js'

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
  --timeout-ms N     client-side bound of one request (default 10000)
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
  timeoutMs: number
  databaseUrl: string
  redisServer: string
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
      'timeout-ms': { type: 'string' },
      'database-url': { type: 'string' },
      'redis-server': { type: 'string' },
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
    if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${String(raw)}"`)
    return n
  }
  const ratio = Number(values['unclaim-ratio'] ?? 0.2)
  if (!(ratio >= 0 && ratio <= 1)) throw new UsageError(`--unclaim-ratio must be between 0 and 1, got "${values['unclaim-ratio']}"`)
  return {
    durationMs: count('duration', quick ? 20 : 60, 5) * 1000,
    requests: count('requests', quick ? 2500 : 8000, 1),
    seed: count('seed', randomBytes(4).readUInt32BE() % 1_000_000, 0),
    vouchers: count('vouchers', quick ? 2 : 3, 1),
    limit: count('limit', quick ? 40 : 100, 1),
    users: count('users', quick ? 600 : 1500, 1),
    concurrency: count('concurrency', quick ? 32 : 48, 1),
    unclaimRatio: ratio,
    timeoutMs: count('timeout-ms', 10_000, 100),
    databaseUrl: values['database-url'] ?? (process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'),
    redisServer: values['redis-server'] ?? 'redis-server',
  }
}

/** A free TCP port on loopback (the kernel's pick; released before redis-server binds it). */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** A `redis-server` of this script: no persistence, loopback, its own temp dir; stopped by PID. */
class OwnedRedis {
  private child: ChildProcess | undefined
  private exited: Promise<void> = Promise.resolve()

  private constructor(
    readonly binary: string,
    readonly port: number,
    readonly dir: string,
  ) {}

  static async create(binary: string): Promise<OwnedRedis> {
    const dir = await mkdtemp(join(tmpdir(), 'andromeda-chaos-'))
    return new OwnedRedis(binary, await freePort(), dir)
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  /** Start it and wait until it answers PING (bounded). */
  async start(): Promise<void> {
    // No RDB, no AOF: a restart loses every counter, the case the service must survive.
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
    args.push('--dir', this.dir, '--daemonize', 'no', '--loglevel', 'warning')
    const child = spawn(this.binary, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr?.on('data', (chunk) => {
      stderr += chunk
    })
    this.child = child
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()))
    const failed = new Promise<never>((_, reject) => {
      child.once('error', (error) => reject(new Error(`cannot start ${this.binary}: ${error.message}`)))
      child.once('exit', (code) => reject(new Error(`${this.binary} exited with ${code}: ${stderr.trim()}`)))
    })
    failed.catch(() => {})
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on('error', () => {})
    try {
      const deadline = Date.now() + 10_000
      for (;;) {
        const ok = await Promise.race([
          probe.connect().then(
            () => probe.ping().then(() => true),
            () => false,
          ),
          failed,
        ])
        if (ok) return
        if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer within 10 s`)
        probe.disconnect()
        await sleep(50)
      }
    } finally {
      probe.disconnect()
    }
  }

  /** Kill it (SIGKILL: a crash, nothing is saved) and wait until it is gone. */
  async kill(): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGKILL')
    await this.exited
  }

  /** Kill it and remove its directory. */
  async dispose(): Promise<void> {
    await this.kill()
    await rm(this.dir, { recursive: true, force: true })
  }
}

type FaultKind = 'restart' | 'script-flush' | 'client-pause' | 'client-kill'
const FAULT_KINDS: FaultKind[] = ['restart', 'script-flush', 'client-pause', 'client-kill']

interface Fault {
  kind: FaultKind
  /** Seconds since the load began. */
  at: number
  detail: string
}

/**
 * Inject faults until `signal` aborts: each round goes through the four kinds in a seeded
 * order, with a seeded pause between faults. Faults never overlap, and the last one has ended
 * (Redis up, no pause) when this resolves.
 */
async function injectFaults(
  redis: OwnedRedis,
  next: () => number,
  startedAt: number,
  gapMs: [number, number],
  signal: AbortSignal,
): Promise<Fault[]> {
  const faults: Fault[] = []
  // The admin connection: CLIENT KILL skips its own caller, and it reconnects after a restart.
  const admin = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50, connectTimeout: 2000 })
  admin.on('error', () => {})
  const between = (lo: number, hi: number) => Math.round(lo + next() * (hi - lo))
  const wait = (ms: number) => sleep(ms, undefined, { signal }).then(
    () => true,
    () => false,
  )
  try {
    let round: FaultKind[] = []
    while (!signal.aborted) {
      if (!(await wait(between(...gapMs)))) break
      if (round.length === 0) round = [...FAULT_KINDS].sort(() => next() - 0.5)
      const kind = round.shift()!
      const at = (performance.now() - startedAt) / 1000
      try {
        if (kind === 'restart') {
          const downMs = between(100, 1500)
          await redis.kill()
          await sleep(downMs)
          await redis.start()
          faults.push({ kind, at, detail: `down ${downMs} ms` })
        } else if (kind === 'script-flush') {
          await admin.script('FLUSH')
          faults.push({ kind, at, detail: '' })
        } else if (kind === 'client-pause') {
          // Some pauses outlast the store's commandTimeoutMs (2 s): calls time out and the
          // scripts then sitting in Redis's sockets run after their deadline.
          const pauseMs = between(200, 3500)
          await admin.call('CLIENT', 'PAUSE', String(pauseMs), 'ALL')
          faults.push({ kind, at, detail: `${pauseMs} ms` })
          await sleep(pauseMs + 50)
        } else {
          const killed = await admin.call('CLIENT', 'KILL', 'TYPE', 'normal')
          faults.push({ kind, at, detail: `${String(killed)} conn` })
        }
      } catch (error) {
        faults.push({ kind, at, detail: `FAILED: ${(error as Error).message}` })
      }
    }
  } finally {
    admin.disconnect()
  }
  return faults
}

interface LoadResult {
  sent: number
  claims: number
  unclaims: number
  /** Per voucher: 201 claims minus 200 unclaims, as the clients saw them. */
  granted: Map<string, number>
  /** 409 refusals by reason. */
  refused: Map<string, number>
  /** Typed failures (503 with a problem body carrying `code`), by code. */
  typed: Map<string, number>
  /** Anything else: a 500, a 503 without a code, a reset connection. */
  untyped: Map<string, number>
  /** Requests that did not settle within the client-side bound. */
  hung: number
  latenciesMs: number[]
  durationMs: number
}

/**
 * Claims (and unclaims of claims this client holds) over HTTP, paced so `s.requests` spread
 * over `s.durationMs`, `s.concurrency` in flight; stops at the count, the time, or `signal`.
 */
async function runLoad(url: string, codes: string[], s: Settings, next: () => number, signal: AbortSignal): Promise<LoadResult> {
  const result: LoadResult = {
    sent: 0,
    claims: 0,
    unclaims: 0,
    granted: new Map(codes.map((code) => [code, 0])),
    refused: new Map(),
    typed: new Map(),
    untyped: new Map(),
    hung: 0,
    latenciesMs: [],
    durationMs: 0,
  }
  // Claims this client holds (201 seen, no unclaim sent since), as `${user} ${voucher}`.
  const held: string[] = []
  setMaxListeners(s.concurrency * 4 + 20, signal)
  const agent = new Agent({ connections: s.concurrency, headersTimeout: s.timeoutMs, bodyTimeout: s.timeoutMs })
  const started = performance.now()
  const stopAt = started + s.durationMs
  const intervalMs = s.durationMs / s.requests
  let scheduled = 0

  const one = async (path: '/claim' | '/unclaim', voucher: string, user: string) => {
    const bound = AbortSignal.timeout(s.timeoutMs)
    const t0 = performance.now()
    try {
      const response = await request(`${url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ voucher, user }),
        dispatcher: agent,
        signal: AbortSignal.any([signal, bound]),
      })
      const text = await response.body.text()
      result.latenciesMs.push(performance.now() - t0)
      let body: { reason?: unknown; code?: unknown } = {}
      try {
        body = JSON.parse(text)
      } catch {}
      return { status: response.statusCode, body }
    } catch (error) {
      if (bound.aborted) {
        result.hung++
        result.latenciesMs.push(performance.now() - t0)
      } else if (!signal.aborted) {
        const code = (error as { code?: unknown }).code
        bump(result.untyped, typeof code === 'string' ? code : (error as Error).name || 'Error')
      }
      return undefined
    }
  }
  const failure = (status: number, body: { code?: unknown }) => {
    if (status === 503 && typeof body.code === 'string') bump(result.typed, body.code)
    else bump(result.untyped, `HTTP ${status}${typeof body.code === 'string' ? ` ${body.code}` : ''}`)
  }

  const worker = async () => {
    while (!signal.aborted && scheduled < s.requests) {
      const slotAt = started + scheduled++ * intervalMs
      if (slotAt >= stopAt) break
      const delay = slotAt - performance.now()
      if (delay > 0) await sleep(delay)
      if (signal.aborted) break
      result.sent++
      if (held.length > 0 && next() < s.unclaimRatio) {
        // Take a held claim out of the list while its unclaim is in flight.
        const [pair] = held.splice(Math.floor(next() * held.length), 1)
        const [user, voucher] = pair!.split(' ') as [string, string]
        result.unclaims++
        const answer = await one('/unclaim', voucher, user)
        if (!answer) continue
        if (answer.status === 200) bump(result.granted, voucher, -1)
        else {
          failure(answer.status, answer.body)
          held.push(pair!) // still held (a 503 changed nothing)
        }
      } else {
        const voucher = codes[Math.floor(next() * codes.length)]!
        const user = `user-${Math.floor(next() * s.users) + 1}`
        result.claims++
        const answer = await one('/claim', voucher, user)
        if (!answer) continue
        if (answer.status === 201) {
          bump(result.granted, voucher)
          held.push(`${user} ${voucher}`)
        } else if (answer.status === 409) bump(result.refused, String(answer.body.reason ?? 'conflict'))
        else failure(answer.status, answer.body)
      }
    }
  }
  await Promise.all(Array.from({ length: s.concurrency }, worker))
  result.durationMs = performance.now() - started
  await agent.close().catch(() => {})
  return result
}

/** Wait until the store answers again after the last fault (bounded). */
async function storeReady(running: RunningServer, code: string): Promise<void> {
  const deadline = Date.now() + 15_000
  for (;;) {
    try {
      await running.sale.vouchers.get(code)
      return
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the store did not recover within 15 s: ${(error as Error).message}`)
      await sleep(100)
    }
  }
}

/** Per voucher: granted vs claim rows vs limit vs synced usage vs reloaded counter; print the report. */
async function check(
  running: RunningServer,
  load: LoadResult,
  faults: Fault[],
  serviceErrors: Map<string, number>,
): Promise<string[]> {
  const failures: string[] = []
  const rows: string[][] = []
  const live = new Map<string, number>()
  for (const voucher of await running.db.vouchers()) live.set(voucher.code, (await running.sale.vouchers.get(voucher.code)).usage)
  // Every counter goes (as a restart would take them); `get` must reload them from the claim rows.
  await running.store.deleteOwnKeys()
  for (const voucher of await running.db.vouchers()) {
    const granted = load.granted.get(voucher.code) ?? 0
    const claimRows = await running.db.countClaims(voucher.code)
    const reloaded = (await running.sale.vouchers.get(voucher.code)).usage
    const problems: string[] = []
    if (claimRows > voucher.limit) problems.push('OVERSOLD')
    if (granted !== claimRows) problems.push('GRANTED≠ROWS')
    if (voucher.usage !== claimRows) problems.push('SYNCED≠ROWS')
    if (reloaded !== claimRows) problems.push('RELOADED≠ROWS')
    for (const p of problems) {
      failures.push(
        `${voucher.code}: ${p} (limit ${voucher.limit}, granted ${granted}, rows ${claimRows}, synced ${voucher.usage}, reloaded ${reloaded})`,
      )
    }
    rows.push([
      voucher.code,
      String(voucher.limit),
      String(granted),
      String(claimRows),
      String(voucher.usage),
      String(live.get(voucher.code)),
      String(reloaded),
      problems.length ? problems.join(',') : 'ok',
    ])
  }

  console.log('\nfaults injected')
  const width = Math.max(...FAULT_KINDS.map((kind) => kind.length))
  console.log(`${'kind'.padEnd(width)}  count  at (seconds since the load began)`)
  for (const kind of FAULT_KINDS) {
    const mine = faults.filter((f) => f.kind === kind)
    const times = mine.map((f) => `${f.at.toFixed(1)}${f.detail ? ` (${f.detail})` : ''}`).join(', ')
    console.log(`${kind.padEnd(width)}  ${String(mine.length).padStart(5)}  ${times || '-'}`)
  }
  const failedFaults = faults.filter((f) => f.detail.startsWith('FAILED'))
  if (faults.length === 0) failures.push('no fault was injected')
  if (failedFaults.length > 0) failures.push(`${failedFaults.length} fault(s) could not be injected`)

  console.log('\nvouchers (counter: live at the end; reloaded: after every key was deleted)')
  console.log(table(['voucher', 'limit', 'granted', 'claim rows', 'synced usage', 'counter', 'reloaded', 'check'], rows))

  const sorted = [...load.latenciesMs].sort((a, b) => a - b)
  const ms = (v: number) => `${v.toFixed(0)} ms`
  const seconds = load.durationMs / 1000
  console.log('')
  console.log(`requests       ${load.sent} in ${seconds.toFixed(1)} s (${load.claims} claims, ${load.unclaims} unclaims)`)
  console.log(`granted        ${total(load.granted)} held at the end`)
  console.log(`refused        ${tally(load.refused)}`)
  console.log(`typed errors   ${tally(load.typed)}`)
  console.log(`untyped errors ${tally(load.untyped)}`)
  console.log(`hung           ${load.hung}`)
  console.log(
    `latency        p50 ${ms(percentile(sorted, 50))}  p99 ${ms(percentile(sorted, 99))}  max ${ms(sorted.at(-1) ?? Number.NaN)}`,
  )
  console.log(`service errors ${tally(serviceErrors)} (logged by the service: failed refunds, sync writes, 5xx)`)

  if (load.hung > 0) failures.push(`${load.hung} request(s) hung past the bound`)
  if (total(load.untyped) > 0) failures.push(`${total(load.untyped)} untyped error(s): ${tally(load.untyped)}`)
  if (total(load.granted) === 0) failures.push('no claim was granted: the load did not reach the service')
  return failures
}

/** What kind of failure the service logged, e.g. `refund: ERR_STORE`. */
function errorKey(error: unknown, where: string): string {
  const place = where.startsWith('refund') ? 'refund' : where.startsWith('sync') ? 'sync' : where
  const code = (error as { code?: unknown })?.code
  return `${place}: ${typeof code === 'string' ? code : ((error as Error)?.name ?? 'error')}`
}

async function main(): Promise<number> {
  if (process.argv.includes('--cluster')) return (await import('./chaos-cluster.js')).clusterChaos(process.argv.slice(2).filter((a) => a !== '--' && a !== '--cluster'))
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
  const redis = await OwnedRedis.create(s.redisServer)
  let running: RunningServer | undefined
  const failures: string[] = []
  try {
    await redis.start()
    console.log(`flash-sale chaos: seed ${s.seed}, ${s.durationMs / 1000} s, up to ${s.requests} requests, concurrency ${s.concurrency}`)
    console.log(`${s.vouchers} voucher(s) of ${s.limit}, ${s.users} users, unclaim ratio ${s.unclaimRatio}, request bound ${s.timeoutMs} ms`)
    console.log(`on ${redis.url} (own redis-server, pid ${redis.pid}) + PostgreSQL ${redact(s.databaseUrl)}`)

    const serviceErrors = new Map<string, number>()
    running = await startServer({
      databaseUrl: s.databaseUrl,
      redisUrl: redis.url,
      tablePrefix: `andromeda_chaos_${runId}_`,
      keyPrefix: `andromeda-chaos:${runId}:`,
      vouchers: codes.map((code) => ({ code, limit: s.limit })),
      attemptsPerMinute: null,
      onError: (error, where) => {
        bump(serviceErrors, errorKey(error, where))
      },
    })
    console.log(`service on ${running.url}\n`)

    // Two streams from one seed: the fault schedule does not shift when the load's timing does.
    const faultRandom = random(s.seed)
    const loadRandom = random(s.seed ^ 0x5eed)
    const stopFaults = new AbortController()
    const startedAt = performance.now()
    const gap: [number, number] = s.durationMs <= 30_000 ? [600, 1800] : [1000, 3500]
    const faultsDone = injectFaults(redis, faultRandom, startedAt, gap, AbortSignal.any([stopFaults.signal, interrupt.signal]))
    const progress = setInterval(() => {
      const elapsed = (performance.now() - startedAt) / 1000
      process.stderr.write(` ${elapsed.toFixed(0)} s / ${s.durationMs / 1000} s\n`)
    }, 5000)
    let load: LoadResult
    try {
      load = await runLoad(running.url, codes, s, loadRandom, interrupt.signal)
    } finally {
      clearInterval(progress)
      stopFaults.abort()
    }
    const faults = await faultsDone
    if (!interrupt.signal.aborted) {
      // The end: the last fault is over; wait for the store, close HTTP, final sync flush.
      await storeReady(running, codes[0]!)
      await running.closeHttp()
      await running.sale.sync.stop()
      failures.push(...(await check(running, load, faults, serviceErrors)))
    }
  } finally {
    await running?.stop({ dropTables: true, deleteKeys: true }).catch((error: Error) => {
      failures.push(`cleanup failed: ${error.message}`)
    })
    await redis.dispose()
  }
  if (interrupt.signal.aborted) {
    console.error('interrupted: load and faults stopped, tables dropped, redis-server stopped.')
    return 130
  }
  if (failures.length > 0) {
    console.log(`\nFAILED (seed ${s.seed}):\n  ${failures.join('\n  ')}`)
    return 1
  }
  console.log(
    `\nok (seed ${s.seed}): no voucher oversold, no request hung, every error typed; granted, claim rows, synced usage and reloaded counters agree.`,
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
