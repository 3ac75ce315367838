/**
 * `pnpm demo`: start the flash-sale service on a free loopback port, fire thousands of
 * concurrent claims at it over real HTTP, then check, voucher by voucher, that what the
 * clients were granted, the claim rows, the synced usage and the counters all agree and that
 * nothing was oversold. Exits 1 on any mismatch, 130 when interrupted.
 */
import { setMaxListeners } from 'node:events'
import cliProgress from 'cli-progress'
import { Agent, request } from 'undici'
import { endOfRun, flagOptions, integerFlag, readFlags, runCommand, startRun, stringFlag, UsageError } from './cli.js'
import { type RunningServer, startServer } from './server.js'
import { redact } from './store.js'
import { bump, percentile, random, table, tally, total } from './tools.js'

const HELP = `Usage: pnpm demo [options]

  --claims N         claims to fire (default 5000)
  --users N          distinct users (default 2000)
  --vouchers N       vouchers on sale (default 3)
  --limit N          units per voucher (default 100)
  --concurrency N    requests in flight (default 200)
  --store S          memory | redis (default: redis when REDIS_URL is set, else memory)
  --db D             pglite | postgres (default: postgres when DATABASE_URL is set, else pglite)
  --redis-url URL    default: REDIS_URL, else redis://127.0.0.1:6379
  --database-url URL default: DATABASE_URL, else postgres://postgres@127.0.0.1:5432/postgres
  --seed N           seed of the random claims (default 1)
  --timeout S        give up on the load after S seconds (default 120)
  --help
`

interface Settings {
  claims: number
  users: number
  vouchers: number
  limit: number
  concurrency: number
  store: 'memory' | 'redis'
  db: 'pglite' | 'postgres'
  redisUrl: string | undefined
  databaseUrl: string | undefined
  seed: number
  timeoutMs: number
}

function settingsFrom(argv: string[]): Settings | undefined {
  const values = readFlags(
    argv,
    flagOptions([
      'claims',
      'users',
      'vouchers',
      'limit',
      'concurrency',
      'store',
      'db',
      'redis-url',
      'database-url',
      'seed',
      'timeout',
    ]),
  )
  if (!values) return undefined
  const env = (name: string) => process.env[name] || undefined
  const store = stringFlag(values, 'store') ?? (env('REDIS_URL') ? 'redis' : 'memory')
  const db = stringFlag(values, 'db') ?? (env('DATABASE_URL') ? 'postgres' : 'pglite')
  if (store !== 'memory' && store !== 'redis') throw new UsageError(`--store must be memory or redis, got "${store}"`)
  if (db !== 'pglite' && db !== 'postgres') throw new UsageError(`--db must be pglite or postgres, got "${db}"`)
  return {
    claims: integerFlag(values, 'claims', 5000, 1),
    users: integerFlag(values, 'users', 2000, 1),
    vouchers: integerFlag(values, 'vouchers', 3, 1),
    limit: integerFlag(values, 'limit', 100, 0),
    concurrency: integerFlag(values, 'concurrency', 200, 1),
    store,
    db,
    redisUrl:
      store === 'redis' ? (stringFlag(values, 'redis-url') ?? env('REDIS_URL') ?? 'redis://127.0.0.1:6379') : undefined,
    databaseUrl:
      db === 'postgres'
        ? (stringFlag(values, 'database-url') ?? env('DATABASE_URL') ?? 'postgres://postgres@127.0.0.1:5432/postgres')
        : undefined,
    seed: integerFlag(values, 'seed', 1, 0),
    timeoutMs: integerFlag(values, 'timeout', 120, 1) * 1000,
  }
}

interface LoadResult {
  sent: number
  /** Claims granted (201) per voucher, as the clients saw them. */
  granted: Map<string, number>
  refused: Map<string, number>
  errors: Map<string, number>
  latenciesMs: number[]
  durationMs: number
  /** Distinct users that asked for each voucher. */
  demand: Map<string, number>
}

/** Fire the claims over HTTP with `concurrency` requests in flight; stops early on `signal`. */
async function fireClaims(url: string, codes: string[], s: Settings, signal: AbortSignal): Promise<LoadResult> {
  const next = random(s.seed)
  const claims = Array.from({ length: s.claims }, () => ({
    voucher: codes[Math.floor(next() * codes.length)]!,
    user: `user-${Math.floor(next() * s.users) + 1}`,
  }))
  const wanted = new Map<string, Set<string>>(codes.map((code) => [code, new Set()]))
  for (const claim of claims) wanted.get(claim.voucher)!.add(claim.user)

  const result: LoadResult = {
    sent: 0,
    granted: new Map(codes.map((code) => [code, 0])),
    refused: new Map(),
    errors: new Map(),
    latenciesMs: [],
    durationMs: 0,
    demand: new Map([...wanted].map(([code, users]) => [code, users.size])),
  }
  // Every request in flight listens to the one signal (undici may add more than one listener each).
  setMaxListeners(s.concurrency * 4 + 20, signal)
  const agent = new Agent({ connections: s.concurrency, headersTimeout: 30_000, bodyTimeout: 30_000 })
  const bar = new cliProgress.SingleBar(
    {
      format: ' claims {bar} {percentage}% | {value}/{total} | granted {granted} | refused {refused} | errors {errors}',
      hideCursor: true,
      noTTYOutput: true,
      notTTYSchedule: 2000,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  )
  // Open every connection before the clock starts, as load generators do: a server busy with
  // requests accepts new connections slowly, and the first claims would measure that instead.
  await Promise.all(
    Array.from({ length: Math.min(s.concurrency, s.claims) }, () =>
      request(`${url}/healthz`, { dispatcher: agent, signal }).then((response) => response.body.dump()),
    ),
  ).catch((error) => {
    if (!signal.aborted) throw error
  })

  const counts = { granted: 0, refused: 0, errors: 0 }
  bar.start(s.claims, 0, counts)

  const started = performance.now()
  let cursor = 0
  const worker = async () => {
    while (cursor < claims.length && !signal.aborted) {
      const claim = claims[cursor++]!
      result.sent++
      const t0 = performance.now()
      try {
        const response = await request(`${url}/claim`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(claim),
          dispatcher: agent,
          signal,
        })
        const body = (await response.body.json().catch(() => ({}))) as { reason?: string }
        result.latenciesMs.push(performance.now() - t0)
        if (response.statusCode === 201) {
          bump(result.granted, claim.voucher)
          counts.granted++
        } else if (response.statusCode === 409) {
          bump(result.refused, body.reason ?? 'conflict')
          counts.refused++
        } else if (response.statusCode === 429) {
          bump(result.refused, 'too-many-attempts')
          counts.refused++
        } else {
          bump(result.errors, `HTTP ${response.statusCode}`)
          counts.errors++
        }
      } catch (error) {
        if (signal.aborted) break // interrupted or timed out: not the service's error
        bump(result.errors, (error as Error).name || 'Error')
        counts.errors++
      }
      bar.increment(1, counts)
    }
  }
  await Promise.all(Array.from({ length: Math.min(s.concurrency, s.claims) }, worker))
  result.durationMs = performance.now() - started
  bar.update(counts)
  bar.stop()
  await agent.close().catch(() => {})
  return result
}

/** Read the database and the counters after the final sync; print the table; return the failed checks. */
async function report(running: RunningServer, load: LoadResult, s: Settings): Promise<string[]> {
  const failures: string[] = []
  const rows: string[][] = []
  for (const voucher of await running.db.vouchers()) {
    const granted = load.granted.get(voucher.code) ?? 0
    const claimRows = await running.db.countClaims(voucher.code)
    const counter = (await running.sale.vouchers.get(voucher.code)).usage
    const problems: string[] = []
    if (claimRows > voucher.limit || counter > voucher.limit) problems.push('OVERSOLD')
    if (granted !== claimRows || claimRows !== voucher.usage || voucher.usage !== counter) problems.push('MISMATCH')
    // Enough distinct users asked for it: every unit must be gone, or some leaked.
    if (load.sent === s.claims && (load.demand.get(voucher.code) ?? 0) >= voucher.limit && granted !== voucher.limit) {
      problems.push('UNDERSOLD')
    }
    for (const p of problems) {
      failures.push(
        `${voucher.code}: ${p} (limit ${voucher.limit}, granted ${granted}, rows ${claimRows}, synced ${voucher.usage}, counter ${counter})`,
      )
    }
    const cells = [voucher.limit, granted, claimRows, voucher.usage, counter].map(String)
    rows.push([voucher.code, ...cells, problems.join(',') || 'ok'])
  }
  const sorted = [...load.latenciesMs].sort((a, b) => a - b)
  const ms = (v: number) => `${v.toFixed(1)} ms`
  const errorCount = total(load.errors)
  if (errorCount > 0) failures.push(`${errorCount} request(s) failed: ${tally(load.errors)}`)

  console.log('')
  console.log(table(['voucher', 'limit', 'granted', 'claim rows', 'synced usage', 'counter', 'check'], rows))
  console.log('')
  console.log(
    `requests      ${load.sent} in ${(load.durationMs / 1000).toFixed(2)} s (${Math.round(load.sent / (load.durationMs / 1000))}/s)`,
  )
  console.log(`granted       ${total(load.granted)}`)
  console.log(`refused       ${tally(load.refused)}`)
  console.log(`errors        ${tally(load.errors)}`)
  console.log(
    `latency       p50 ${ms(percentile(sorted, 50))}  p95 ${ms(percentile(sorted, 95))}  p99 ${ms(percentile(sorted, 99))}`,
  )
  return failures
}

async function main(): Promise<number> {
  // Ctrl-C (or SIGTERM): stop the load, then shut down in order below. A second one exits at once.
  const run = startRun(
    HELP,
    () => settingsFrom(process.argv.slice(2)),
    'stopping the load, the server and the sync (final flush)...',
    true,
  )
  if (typeof run === 'number') return run
  const { settings: s, interrupted, runId } = run
  const codes = Array.from({ length: s.vouchers }, (_, i) => `FLASH-${i + 1}`)
  const where = [
    s.db === 'postgres' ? `PostgreSQL ${redact(s.databaseUrl!)}` : 'PGlite (embedded)',
    s.store === 'redis' ? `Redis ${redact(s.redisUrl!)}` : 'memory store',
  ].join(' + ')
  console.log(
    `flash-sale demo: ${s.claims} claims from ${s.users} users at ${s.vouchers} voucher(s) of ${s.limit}, concurrency ${s.concurrency}`,
  )
  console.log(`on ${where}`)

  let serviceErrors = 0
  const running = await startServer({
    databaseUrl: s.databaseUrl,
    // This run's own tables and keys, removed at the end.
    store: { url: s.redisUrl, prefix: `andromeda-demo:${runId}:` },
    tablePrefix: `andromeda_demo_${runId}_`,
    vouchers: codes.map((code) => ({ code, limit: s.limit })),
    // Every user makes a few attempts; the limiter is not what this demo measures.
    attemptsPerMinute: null,
    onError: () => {
      serviceErrors++
    },
  })
  let failures: string[] = []
  try {
    if (!interrupted.aborted) {
      console.log(`service on ${running.url}\n`)
      const deadline = AbortSignal.timeout(s.timeoutMs)
      const load = await fireClaims(running.url, codes, s, AbortSignal.any([interrupted, deadline]))
      if (deadline.aborted && !interrupted.aborted) failures.push(`load timed out after ${s.timeoutMs / 1000} s`)
      await running.closeHttp()
      // The final flush: the `usage` column now holds each counter's last value.
      await running.sale.sync.stop()
      if (!interrupted.aborted) failures = [...failures, ...(await report(running, load, s))]
      if (serviceErrors > 0) failures.push(`${serviceErrors} failure(s) reported by the service`)
    }
  } finally {
    await running.stop({ dropTables: s.db === 'postgres', deleteKeys: s.store === 'redis' })
  }
  return endOfRun({
    interrupted: interrupted.aborted,
    stopped: 'load stopped, server closed, usage synced (final flush), connections closed.',
    failures,
    held: 'no voucher oversold; granted, claim rows, synced usage and counters agree.',
  })
}

runCommand('demo', main)
