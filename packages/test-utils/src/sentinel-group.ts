import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { command } from './admin.js'
import { redisAnswers } from './index.js'
import { freePort, waitFor } from './own-redis.js'
import { type FailoverTiming, type ReplicatedNode, startNodes, stopNode } from './replicated-node.js'

/** A primary, a replica and three Sentinels on loopback ports; see `startSentinelGroup`. */
export interface SentinelGroup {
  /** The name the Sentinels monitor the primary under. */
  readonly name: string
  readonly sentinels: { host: string; port: number }[]
  readonly nodes: ReplicatedNode[]
  /** Delay of the replication stream from now on (ms; 0 none). No-op without proxies. */
  setLagMs(lagMs: number): void
  /** The node every Sentinel names as primary (throws while they disagree). */
  primary(): Promise<ReplicatedNode>
  /** Until both servers are up, every Sentinel names the same primary, and the replica is in sync. */
  waitHealthy(timeoutMs?: number): Promise<void>
  /**
   * Fail the primary over: `kill` (SIGKILL; the Sentinels notice and promote the replica, then
   * the old primary is restarted, empty, as a replica of the new one) or `sentinel`
   * (`SENTINEL FAILOVER`: promotes the replica without waiting for it to catch up). Resolves
   * when the group is healthy again.
   */
  failover(kind: 'kill' | 'sentinel'): Promise<FailoverTiming>
  stop(): Promise<void>
}

const NAME = 'andromeda'

/** A Sentinel's flat `[field, value, ...]` reply as a map. */
function fieldsOf(reply: unknown): Map<string, string> {
  const fields = new Map<string, string>()
  if (Array.isArray(reply))
    for (let i = 0; i + 1 < reply.length; i += 2) fields.set(String(reply[i]), String(reply[i + 1]))
  return fields
}

/**
 * Start a Sentinel-managed primary with one replica and three Sentinels (quorum 2,
 * `down-after-milliseconds` 1000), with a lag proxy in front of each server unless `lagMs` is
 * false: the servers announce the proxies' ports, so clients and replication go through
 * them. Everything runs on loopback ports and is stopped by PID.
 */
export async function startSentinelGroup(options: { lagMs?: number | false } = {}): Promise<SentinelGroup> {
  const lagMs = options.lagMs ?? 0
  const dir = mkdtempSync(join(tmpdir(), 'andromeda-sentinel-'))
  let primaryPort = 0
  const nodes = await startNodes(
    2,
    dir,
    (_port, proxyPort, i) => {
      const announced = proxyPort ?? _port
      if (i === 0) primaryPort = announced
      return [
        '--repl-diskless-sync',
        'yes',
        '--repl-diskless-sync-delay',
        '0',
        ...(proxyPort === undefined ? [] : ['--replica-announce-port', String(proxyPort)]),
        ...(i === 0 ? [] : ['--replicaof', '127.0.0.1', String(primaryPort)]),
      ]
    },
    lagMs,
  )
  const sentinels: Sentinel[] = []
  const group = makeGroup(nodes, sentinels, dir)
  try {
    for (let i = 0; i < 3; i++) {
      const sentinel = await spawnSentinel(join(dir, `s${i}`), primaryPort)
      // Listed before it is waited for: a Sentinel that never answers is stopped with the group.
      sentinels.push(sentinel)
      await waitFor(() => redisAnswers(sentinel.port), `redis-sentinel on port ${sentinel.port}`)
    }
    await group.waitHealthy(30_000)
  } catch (error) {
    await group.stop()
    throw error
  }
  return group
}

/** One Sentinel process, stopped by PID. */
interface Sentinel {
  port: number
  child: ChildProcess
  exited: Promise<unknown>
}

/** Spawn a Sentinel (in `dir`) monitoring the primary announced on `primaryPort`. */
async function spawnSentinel(dir: string, primaryPort: number): Promise<Sentinel> {
  const port = await freePort()
  mkdirSync(dir)
  const conf = join(dir, 'sentinel.conf')
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      'loglevel warning',
      `sentinel monitor ${NAME} 127.0.0.1 ${primaryPort} 2`,
      `sentinel down-after-milliseconds ${NAME} 1000`,
      // A Sentinel starts no failover of a primary within 2 x this of its last one: keep it short.
      `sentinel failover-timeout ${NAME} 1000`,
      `sentinel parallel-syncs ${NAME} 1`,
      '',
    ].join('\n'),
  )
  const child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' })
  return { port, child, exited: new Promise((resolve) => child.once('exit', resolve)) }
}

/** The node every Sentinel names as primary; undefined while they disagree. */
async function namedPrimary(nodes: ReplicatedNode[], sentinels: Sentinel[]): Promise<ReplicatedNode | undefined> {
  const ports = await Promise.all(
    sentinels.map(async (s) => {
      const reply = await command(s.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', NAME])
      return Array.isArray(reply) ? Number(reply[1]) : 0
    }),
  )
  if (!ports.every((p) => p === ports[0])) return undefined
  return nodes.find((n) => n.port === ports[0])
}

/**
 * Each Sentinel would pick `replica` for the next failover: reachable, and its link to the
 * primary not down for long (as of the replica's INFO the Sentinel last read; it refuses one
 * down for 10 x down-after-milliseconds).
 */
async function replicaEligible(sentinels: Sentinel[], replica: ReplicatedNode): Promise<boolean> {
  for (const s of sentinels) {
    const replicas = await command(s.port, ['SENTINEL', 'REPLICAS', NAME])
    const good = (Array.isArray(replicas) ? replicas : []).some((r) => {
      const fields = fieldsOf(r)
      const flags = fields.get('flags') ?? ''
      return (
        fields.get('port') === String(replica.port) &&
        !flags.includes('down') &&
        !flags.includes('disconnected') &&
        Number(fields.get('master-link-down-time')) <= 5000
      )
    })
    if (!good) return false
  }
  return true
}

async function sentinelsKnowEachOther(sentinels: Sentinel[]): Promise<boolean> {
  for (const s of sentinels) {
    const others = await command(s.port, ['SENTINEL', 'SENTINELS', NAME])
    if (!Array.isArray(others) || others.length !== sentinels.length - 1) return false
  }
  return true
}

/** Both servers up, one primary named by every Sentinel, the replica in sync and eligible. */
async function groupHealthy(nodes: ReplicatedNode[], sentinels: Sentinel[]): Promise<boolean> {
  if (nodes.some((n) => !n.alive)) return false
  const primary = await namedPrimary(nodes, sentinels)
  if (!primary || (await primary.role()) !== 'master') return false
  const replica = nodes.find((n) => n !== primary)!
  if (!(await replica.replicaInSync())) return false
  if (!(await replicaEligible(sentinels, replica))) return false
  return sentinelsKnowEachOther(sentinels)
}

async function failoverGroup(
  group: SentinelGroup,
  sentinels: Sentinel[],
  kind: 'kill' | 'sentinel',
): Promise<FailoverTiming> {
  const { nodes } = group
  const startedAt = performance.now()
  const primary = await group.primary()
  const replica = nodes.find((n) => n !== primary)!
  if (kind === 'kill') await primary.kill()
  else await command(sentinels[0]!.port, ['SENTINEL', 'FAILOVER', NAME])
  await waitFor(
    async () => (await replica.role()) === 'master' && (await namedPrimary(nodes, sentinels)) === replica,
    `${replica.name} to take over from ${primary.name}`,
    30_000,
  )
  const promotedMs = performance.now() - startedAt
  // The old primary becomes a replica of the new one, as the Sentinels would make it, only
  // sooner (they take up to 10 s, their INFO period): restarted empty after a kill, told
  // with REPLICAOF after SENTINEL FAILOVER. Until then it takes writes the new one never sees.
  if (kind === 'kill') await primary.restart(['--replicaof', '127.0.0.1', String(replica.port)])
  else await command(primary.serverPort, ['REPLICAOF', '127.0.0.1', replica.port])
  await group.waitHealthy(30_000)
  return { kind, from: primary.name, to: replica.name, promotedMs, healthyMs: performance.now() - startedAt }
}

function makeGroup(nodes: ReplicatedNode[], sentinels: Sentinel[], dir: string): SentinelGroup {
  const group: SentinelGroup = {
    name: NAME,
    get sentinels() {
      return sentinels.map((s) => ({ host: '127.0.0.1', port: s.port }))
    },
    nodes,
    setLagMs(lagMs) {
      for (const node of nodes) if (node.proxy) node.proxy.lagMs = lagMs
    },
    async primary() {
      // Right after a failover a Sentinel may be restarting a link or still voting: ask again.
      let node: ReplicatedNode | undefined
      await waitFor(async () => {
        node = await namedPrimary(nodes, sentinels)
        return node !== undefined
      }, 'the Sentinels to agree on a primary')
      return node!
    },
    async waitHealthy(timeoutMs = 20_000) {
      await waitFor(() => groupHealthy(nodes, sentinels), 'the Sentinel group to be healthy', timeoutMs)
    },
    failover: (kind) => failoverGroup(group, sentinels, kind),
    async stop() {
      for (const s of sentinels) s.child.kill('SIGTERM')
      await Promise.all(sentinels.map((s) => s.exited))
      await Promise.all(nodes.map((n) => stopNode(n)))
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return group
}
