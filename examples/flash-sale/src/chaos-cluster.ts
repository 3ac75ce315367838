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
import { setTimeout as sleep } from 'node:timers/promises'
import { type FailoverTiming, type ReplicatedCluster, startReplicatedCluster } from '@andromeda/test-utils'
import type { ServiceState } from './chaos/faults.js'
import { type LoadResult, runLoad } from './chaos/load.js'
import { loadFailures, printLoadSummary, usersOf } from './chaos/load-report.js'
import { LOAD_FLAGS, type LoadSettings, loadFlagsHelp, loadSettings } from './chaos/load-settings.js'
import { storeReady } from './chaos/store-ready.js'
import { cleanupFailed, endOfRun, flagOptions, integerFlag, readFlags, startRun } from './cli.js'
import { type RunningServer, startServer } from './server.js'
import { redact } from './store.js'
import { bump, random, table, tally } from './tools.js'

export const CLUSTER_HELP = `Usage: pnpm chaos --cluster [options]

  --quick            CI size: 20 s, 800 requests, 2 vouchers of 40
${loadFlagsHelp('failovers', 6000)}  --lag-ms N         delay of the replication stream (default 50)
  --no-replicas      run the store without the replicas option (failovers may then lose units)
  --help
`

const REPLICAS = { count: 1, timeoutMs: 500 }
type Kind = 'kill' | 'force' | 'manual'
const KINDS: Kind[] = ['kill', 'force', 'manual']

interface Settings extends LoadSettings {
  lagMs: number
  replicas: boolean
}

function settingsFrom(argv: string[]): Settings | undefined {
  const values = readFlags(argv, { ...LOAD_FLAGS, ...flagOptions(['lag-ms'], ['no-replicas']) })
  if (!values) return undefined
  return {
    ...loadSettings(values, { quick: 800, full: 6000 }),
    lagMs: integerFlag(values, 'lag-ms', 50, 0),
    replicas: values['no-replicas'] !== true,
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
    // Claims the clients hold at the end: 201s less the unclaims they were answered 200 for.
    const granted = usersOf(load.held, voucher.code).size
    const claimRows = await running.db.countClaims(voucher.code)
    const counter = live.get(voucher.code) ?? 0
    const reloaded = (await running.sale.vouchers.get(voucher.code)).usage
    const problems: string[] = []
    if (claimRows > voucher.limit) problems.push('OVERSOLD')
    if (granted !== claimRows) problems.push('GRANTED≠ROWS')
    // The sync writes the counter. A counter may end above the rows: units of requests that
    // failed (a grant the replicas did not confirm, a give-back that failed) stay counted
    // until a reload. Below only by the claims whose commit failed (the service reported each:
    // its holds lapsed, its row stayed) and the unclaims that failed (a refund may have gone
    // through while the row stayed); any further below, a failover lost units, and only the
    // database's guard kept them from selling twice.
    if (voucher.usage !== counter) problems.push('SYNCED≠COUNTER')
    if (reloaded !== claimRows) problems.push('RELOADED≠ROWS')
    const uncommitted = (failedCommits.get(voucher.code) ?? 0) + (load.failedUnclaims.get(voucher.code) ?? 0)
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
    const cells = [voucher.limit, granted, claimRows, voucher.usage, counter, reloaded].map(String)
    rows.push([voucher.code, ...cells, problems.join(',') || 'ok'])
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
  printLoadSummary(load, false)
  console.log(`units lost     ${lost} (claim rows missing from the live counters, beyond failed commits)`)
  console.log(
    `counters low   ${low} (claims whose commit failed, unclaims that failed after a refund: the database's guard covers them)`,
  )
  console.log(`left counted   ${leftCounted} (units counted by requests that failed, until a reload)`)
  console.log(`service errors ${tally(serviceErrors)}`)

  return [...failures, ...loadFailures(load)]
}

/** The cluster mode of `pnpm chaos`; `argv` without `--cluster`. Resolves the exit code. */
export async function clusterChaos(argv: string[]): Promise<number> {
  const run = startRun(
    CLUSTER_HELP,
    () => settingsFrom(argv),
    'stopping the load and the failovers, then cleaning up...',
  )
  if (typeof run === 'number') return run
  const { settings: s, interrupted, runId } = run
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
      store: {
        cluster: cluster.seeds,
        prefix: `andromeda-chaos:${runId}:`,
        ...(s.replicas ? { replicas: REPLICAS } : {}),
      },
      tablePrefix: `andromeda_chaos_${runId}_`,
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
      AbortSignal.any([stopFailovers.signal, interrupted]),
    )
    const progress = setInterval(() => {
      process.stderr.write(` ${((performance.now() - startedAt) / 1000).toFixed(0)} s / ${s.durationMs / 1000} s\n`)
    }, 5000)
    let load: LoadResult
    try {
      // No service kill here: the service stays up (the load's `state` never goes down).
      const state: ServiceState = { life: 0, down: false, inFlight: 0 }
      load = await runLoad({ ...s, url: running.url, codes }, state, loadRandom, interrupted)
    } finally {
      clearInterval(progress)
      stopFailovers.abort()
    }
    const failovers = await done
    if (!interrupted.aborted) {
      await storeReady(running.sale.vouchers, codes)
      await running.closeHttp()
      await running.sale.sync.stop()
      failures.push(...(await check(running, load, failovers, s, serviceErrors, failedCommits)))
    }
  } finally {
    await running?.stop({ dropTables: true, deleteKeys: true }).catch(cleanupFailed(failures))
    await cluster.stop()
  }
  return endOfRun({
    interrupted: interrupted.aborted,
    stopped: 'load and failovers stopped, tables dropped, redis-servers stopped.',
    failures,
    held: `no voucher oversold, no request hung, every error typed; granted, claim rows and reloaded counters agree${s.replicas ? '; no failover lost a unit' : ''}.`,
    seed: s.seed,
  })
}
