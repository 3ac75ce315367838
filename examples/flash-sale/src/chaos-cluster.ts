/**
 * `pnpm chaos --cluster`: run the flash-sale service on a Redis Cluster this script owns (3
 * primaries + 3 replicas, redis-servers on loopback ports, the replication stream delayed by
 * a proxy as a network between machines would) and PostgreSQL, keep claims and unclaims
 * flowing, and meanwhile fail primaries over on a seeded schedule: SIGKILL (the replica takes
 * over; the dead node comes back empty as its replica), `CLUSTER FAILOVER FORCE` (no catch-up)
 * and `CLUSTER FAILOVER` (coordinated). The store runs with `replicas: { count: 1 }`, so a
 * claim is granted only once a replica has it. Then check that no voucher was oversold, no
 * request hung, every error was typed, granted claims, claim rows and reloaded counters agree,
 * the synced usage is the counter's, and no failover lost a unit from a live counter (with
 * `--no-replicas` the loss is reported instead). Exit 0 when every check
 * holds, 1 otherwise, 2 on a usage error, 130 when interrupted.
 */
import { randomBytes } from 'node:crypto'
import { setMaxListeners } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { type FailoverTiming, type ReplicatedCluster, startReplicatedCluster } from '@andromeda/test-utils'
import { Agent, request } from 'undici'
import { type RunningServer, startServer } from './server.js'
import { redact } from './store.js'
import { bump, percentile, random, table, tally, total } from './tools.js'

export const CLUSTER_HELP = `Usage: pnpm chaos --cluster [options]

  --quick            CI size: 20 s, 800 requests, 2 vouchers of 40
  --duration S       seconds of load and failovers (default 60)
  --requests N       most requests to send, paced over the duration (default 6000)
  --seed N           seed of the failover schedule and of the claims (default: random, printed)
  --vouchers N       vouchers on sale (default 3)
  --limit N          units per voucher (default 100)
  --users N          distinct users (default 1500)
  --concurrency N    requests in flight (default 48)
  --unclaim-ratio P  share of requests that unclaim a held voucher, 0..1 (default 0.2)
  --timeout-ms N     client-side bound of one request (default 10000)
  --lag-ms N         delay of the replication stream (default 50)
  --no-replicas      run the store without the replicas option (failovers may then lose units)
  --database-url URL default: DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test
  --help
`

const REPLICAS = { count: 1, timeoutMs: 500 }
type Kind = 'kill' | 'force' | 'manual'
const KINDS: Kind[] = ['kill', 'force', 'manual']

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
  lagMs: number
  replicas: boolean
  databaseUrl: string
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
      'lag-ms': { type: 'string' },
      'no-replicas': { type: 'boolean' },
      'database-url': { type: 'string' },
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
    requests: count('requests', quick ? 800 : 6000, 1),
    seed: count('seed', randomBytes(4).readUInt32BE() % 1_000_000, 0),
    vouchers: count('vouchers', quick ? 2 : 3, 1),
    limit: count('limit', quick ? 40 : 100, 1),
    users: count('users', quick ? 600 : 1500, 1),
    concurrency: count('concurrency', quick ? 32 : 48, 1),
    unclaimRatio: ratio,
    timeoutMs: count('timeout-ms', 10_000, 100),
    lagMs: count('lag-ms', 50, 0),
    replicas: values['no-replicas'] !== true,
    databaseUrl: values['database-url'] ?? (process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'),
  }
}

interface Failover extends FailoverTiming {
  /** Seconds since the load began. */
  at: number
  failed?: string
}

/** Fail primaries over until `signal` aborts, one at a time, a seeded pause between them. */
async function injectFailovers(
  cluster: ReplicatedCluster,
  next: () => number,
  startedAt: number,
  gapMs: [number, number],
  signal: AbortSignal,
): Promise<Failover[]> {
  const failovers: Failover[] = []
  const between = (lo: number, hi: number) => Math.round(lo + next() * (hi - lo))
  let round: Kind[] = []
  while (!signal.aborted) {
    const waited = await sleep(between(...gapMs), undefined, { signal }).then(
      () => true,
      () => false,
    )
    if (!waited) break
    if (round.length === 0) round = [...KINDS].sort(() => next() - 0.5)
    const kind = round.shift()!
    const at = (performance.now() - startedAt) / 1000
    try {
      const pairs = await cluster.topology()
      const { primary } = pairs[Math.floor(next() * pairs.length)]!
      failovers.push({ ...(await cluster.failover(primary, kind)), at })
    } catch (error) {
      failovers.push({ kind, at, from: '?', to: '?', promotedMs: 0, healthyMs: 0, failed: (error as Error).message })
    }
  }
  return failovers
}

interface LoadResult {
  sent: number
  claims: number
  unclaims: number
  /** Per voucher: 201 claims minus 200 unclaims, as the clients saw them. */
  granted: Map<string, number>
  refused: Map<string, number>
  /** 503s with a problem body carrying `code`, by code. */
  typed: Map<string, number>
  /** Anything else: a 500, a 503 without a code, a reset connection. */
  untyped: Map<string, number>
  hung: number
  latenciesMs: number[]
  durationMs: number
}

/** Claims and unclaims over HTTP, paced over the duration, `concurrency` in flight. */
async function runLoad(
  url: string,
  codes: string[],
  s: Settings,
  next: () => number,
  signal: AbortSignal,
): Promise<LoadResult> {
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
  const held: string[] = []
  setMaxListeners(s.concurrency * 4 + 20, signal)
  const agent = new Agent({ connections: s.concurrency, headersTimeout: s.timeoutMs, bodyTimeout: s.timeoutMs })
  const started = performance.now()
  const stopAt = started + s.durationMs
  const intervalMs = s.durationMs / s.requests
  let scheduled = 0

  const send = async (path: '/claim' | '/unclaim', voucher: string, user: string) => {
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
      if (response.statusCode >= 500) {
        if (response.statusCode === 503 && typeof body.code === 'string') bump(result.typed, body.code)
        else bump(result.untyped, `HTTP ${response.statusCode}`)
      }
      return { status: response.statusCode, body }
    } catch (error) {
      if (bound.aborted) {
        result.hung++
        result.latenciesMs.push(performance.now() - t0)
      } else if (!signal.aborted) bump(result.untyped, (error as { code?: string }).code ?? (error as Error).name)
      return undefined
    }
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
        const [pair] = held.splice(Math.floor(next() * held.length), 1)
        const [user, voucher] = pair!.split(' ') as [string, string]
        result.unclaims++
        const answer = await send('/unclaim', voucher, user)
        if (answer?.status === 200) bump(result.granted, voucher, -1)
        else if (answer) held.push(pair!) // still held (a 503 changed nothing)
      } else {
        const voucher = codes[Math.floor(next() * codes.length)]!
        const user = `user-${Math.floor(next() * s.users) + 1}`
        result.claims++
        const answer = await send('/claim', voucher, user)
        if (answer?.status === 201) {
          bump(result.granted, voucher)
          held.push(`${user} ${voucher}`)
        } else if (answer?.status === 409) bump(result.refused, String(answer.body.reason ?? 'conflict'))
      }
    }
  }
  await Promise.all(Array.from({ length: s.concurrency }, worker))
  result.durationMs = performance.now() - started
  await agent.close().catch(() => {})
  return result
}

/** Wait until the store answers again after the last failover (bounded). */
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

/** Per voucher: granted vs rows vs limit vs synced vs live counter vs reloaded; print the report. */
async function check(
  running: RunningServer,
  load: LoadResult,
  failovers: Failover[],
  s: Settings,
  serviceErrors: Map<string, number>,
  failedCommits: Map<string, number>,
): Promise<string[]> {
  const failures: string[] = []
  const rows: string[][] = []
  const live = new Map<string, number>()
  for (const voucher of await running.db.vouchers())
    live.set(voucher.code, (await running.sale.vouchers.get(voucher.code)).usage)
  // Every counter goes; `get` must reload them from the claim rows.
  await running.store.deleteOwnKeys()
  let lost = 0
  let low = 0
  let leftCounted = 0
  for (const voucher of await running.db.vouchers()) {
    const granted = load.granted.get(voucher.code) ?? 0
    const claimRows = await running.db.countClaims(voucher.code)
    const counter = live.get(voucher.code) ?? 0
    const reloaded = (await running.sale.vouchers.get(voucher.code)).usage
    const problems: string[] = []
    if (claimRows > voucher.limit) problems.push('OVERSOLD')
    if (granted !== claimRows) problems.push('GRANTED≠ROWS')
    // The sync writes the counter. A counter may end above the rows: units of requests that
    // failed (a grant the replicas did not confirm, a give-back that failed) stay counted
    // until a reload. Below only by the claims whose commit failed (the service reported each:
    // its holds lapsed, its row stayed); any further below, a failover lost units, and only the
    // database's guard kept them from selling twice.
    if (voucher.usage !== counter) problems.push('SYNCED≠COUNTER')
    if (reloaded !== claimRows) problems.push('RELOADED≠ROWS')
    const uncommitted = failedCommits.get(voucher.code) ?? 0
    const voucherLost = Math.max(0, claimRows - uncommitted - counter)
    lost += voucherLost
    low += Math.min(uncommitted, Math.max(0, claimRows - counter))
    leftCounted += Math.max(0, counter - claimRows)
    if (s.replicas && voucherLost > 0) problems.push('LOST')
    for (const p of problems) {
      failures.push(
        `${voucher.code}: ${p} (limit ${voucher.limit}, granted ${granted}, rows ${claimRows}, synced ${voucher.usage}, counter ${counter}, reloaded ${reloaded})`,
      )
    }
    rows.push([
      voucher.code,
      String(voucher.limit),
      String(granted),
      String(claimRows),
      String(voucher.usage),
      String(counter),
      String(reloaded),
      problems.join(',') || 'ok',
    ])
  }

  console.log('\nfailovers')
  console.log(
    table(
      ['at s', 'kind', 'primary', 'promoted ms', 'healthy ms'],
      failovers.map((f) => [
        f.at.toFixed(1),
        f.kind,
        f.failed ? `FAILED: ${f.failed}` : `${f.from} -> ${f.to}`,
        f.promotedMs.toFixed(0),
        f.healthyMs.toFixed(0),
      ]),
    ),
  )
  if (failovers.length === 0) failures.push('no failover was made')
  const failed = failovers.filter((f) => f.failed)
  if (failed.length > 0) failures.push(`${failed.length} failover(s) could not be made`)

  console.log('\nvouchers (counter: live at the end; reloaded: after every key was deleted)')
  console.log(
    table(['voucher', 'limit', 'granted', 'claim rows', 'synced usage', 'counter', 'reloaded', 'check'], rows),
  )
  const sorted = [...load.latenciesMs].sort((a, b) => a - b)
  const ms = (v: number) => `${v.toFixed(0)} ms`
  console.log('')
  console.log(
    `requests       ${load.sent} in ${(load.durationMs / 1000).toFixed(1)} s (${load.claims} claims, ${load.unclaims} unclaims)`,
  )
  console.log(`granted        ${total(load.granted)} held at the end`)
  console.log(`refused        ${tally(load.refused)}`)
  console.log(`typed errors   ${tally(load.typed)}`)
  console.log(`untyped errors ${tally(load.untyped)}`)
  console.log(`hung           ${load.hung}`)
  console.log(
    `latency        p50 ${ms(percentile(sorted, 50))}  p99 ${ms(percentile(sorted, 99))}  max ${ms(sorted.at(-1) ?? Number.NaN)}`,
  )
  console.log(`units lost     ${lost} (claim rows missing from the live counters, beyond failed commits)`)
  console.log(
    `counters low   ${low} (claims whose commit failed: their holds lapsed; the database's guard covers them)`,
  )
  console.log(`left counted   ${leftCounted} (units counted by requests that failed, until a reload)`)
  console.log(`service errors ${tally(serviceErrors)}`)

  if (load.hung > 0) failures.push(`${load.hung} request(s) hung past the bound`)
  if (total(load.untyped) > 0) failures.push(`${total(load.untyped)} untyped error(s): ${tally(load.untyped)}`)
  if (total(load.granted) === 0) failures.push('no claim was granted: the load did not reach the service')
  return failures
}

/** The cluster mode of `pnpm chaos`; `argv` without `--cluster`. Resolves the exit code. */
export async function clusterChaos(argv: string[]): Promise<number> {
  let s: Settings | undefined
  try {
    s = settingsFrom(argv)
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${CLUSTER_HELP}`)
    return 2
  }
  if (!s) {
    console.log(CLUSTER_HELP)
    return 0
  }
  const interrupt = new AbortController()
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupt.signal.aborted) return
    console.error(`\n${signal}: stopping the load and the failovers, then cleaning up...`)
    interrupt.abort(new Error(signal))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  const runId = randomBytes(4).toString('hex')
  const codes = Array.from({ length: s.vouchers }, (_, i) => `CHAOS-${i + 1}`)
  const failures: string[] = []
  const cluster = await startReplicatedCluster({ lagMs: s.lagMs })
  let running: RunningServer | undefined
  try {
    console.log(
      `flash-sale chaos on a Redis Cluster: seed ${s.seed}, ${s.durationMs / 1000} s, up to ${s.requests} requests, concurrency ${s.concurrency}`,
    )
    console.log(
      `${s.vouchers} voucher(s) of ${s.limit}, ${s.users} users, unclaim ratio ${s.unclaimRatio}, request bound ${s.timeoutMs} ms`,
    )
    console.log(
      `3 primaries + 3 replicas on ${cluster.seeds.map((n) => n.port).join(', ')} (own redis-servers), replication ${s.lagMs} ms behind, ` +
        `store ${s.replicas ? `replicas ${JSON.stringify(REPLICAS)}` : 'without the replicas option'} + PostgreSQL ${redact(s.databaseUrl)}`,
    )
    const serviceErrors = new Map<string, number>()
    const failedCommits = new Map<string, number>()
    running = await startServer({
      databaseUrl: s.databaseUrl,
      redisCluster: cluster.seeds,
      ...(s.replicas ? { replicas: REPLICAS } : {}),
      tablePrefix: `andromeda_chaos_${runId}_`,
      keyPrefix: `andromeda-chaos:${runId}:`,
      vouchers: codes.map((code) => ({ code, limit: s.limit })),
      attemptsPerMinute: null,
      onError: (error, where) => {
        const code = (error as { code?: unknown })?.code
        bump(
          serviceErrors,
          `${where.split(' ')[0]}: ${typeof code === 'string' ? code : ((error as Error)?.name ?? 'error')}`,
        )
        // "commit of <user>:<voucher>": its holds lapse, its row stays (see app.ts).
        if (where.startsWith('commit of ')) bump(failedCommits, where.slice(where.lastIndexOf(':') + 1))
      },
    })
    console.log(`service on ${running.url}\n`)

    const failoverRandom = random(s.seed)
    const loadRandom = random(s.seed ^ 0x5eed)
    const stopFailovers = new AbortController()
    const startedAt = performance.now()
    const gap: [number, number] = s.durationMs <= 30_000 ? [500, 1500] : [1000, 4000]
    const done = injectFailovers(
      cluster,
      failoverRandom,
      startedAt,
      gap,
      AbortSignal.any([stopFailovers.signal, interrupt.signal]),
    )
    const progress = setInterval(() => {
      process.stderr.write(` ${((performance.now() - startedAt) / 1000).toFixed(0)} s / ${s.durationMs / 1000} s\n`)
    }, 5000)
    let load: LoadResult
    try {
      load = await runLoad(running.url, codes, s, loadRandom, interrupt.signal)
    } finally {
      clearInterval(progress)
      stopFailovers.abort()
    }
    const failovers = await done
    if (!interrupt.signal.aborted) {
      await storeReady(running, codes[0]!)
      await running.closeHttp()
      await running.sale.sync.stop()
      failures.push(...(await check(running, load, failovers, s, serviceErrors, failedCommits)))
    }
  } finally {
    await running?.stop({ dropTables: true, deleteKeys: true }).catch((error: Error) => {
      failures.push(`cleanup failed: ${error.message}`)
    })
    await cluster.stop()
  }
  if (interrupt.signal.aborted) {
    console.error('interrupted: load and failovers stopped, tables dropped, redis-servers stopped.')
    return 130
  }
  if (failures.length > 0) {
    console.log(`\nFAILED (seed ${s.seed}):\n  ${failures.join('\n  ')}`)
    return 1
  }
  console.log(
    `\nok (seed ${s.seed}): no voucher oversold, no request hung, every error typed; granted, claim rows and reloaded counters agree${s.replicas ? '; no failover lost a unit' : ''}.`,
  )
  return 0
}
