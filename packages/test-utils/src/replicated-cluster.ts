import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { command } from './admin.js'
import { waitFor } from './own-redis.js'
import { type FailoverTiming, type ReplicatedNode, startNodes, stopNode } from './replicated-node.js'

interface ClusterLine {
  id: string
  port: number
  flags: string[]
  masterId: string
}

function parseNodes(text: string): ClusterLine[] {
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, address, flags, masterId] = line.split(' ') as [string, string, string, string]
      return { id, port: Number(address.split('@')[0]!.split(':').pop()), flags: flags.split(','), masterId }
    })
}

/** A local Redis Cluster with one replica per primary, on loopback ports; see `startReplicatedCluster`. */
export interface ReplicatedCluster {
  readonly nodes: ReplicatedNode[]
  /** Addresses for a client to start from (every node, through its proxy). */
  readonly seeds: { host: string; port: number }[]
  /** Delay of every replication stream from now on (ms; 0 none). No-op without proxies. */
  setLagMs(lagMs: number): void
  /** The current primaries and their replicas, as a live node sees them. */
  topology(): Promise<{ primary: ReplicatedNode; replica: ReplicatedNode | undefined }[]>
  /** Until every node is up, cluster_state:ok everywhere, and each primary has a replica in sync. */
  waitHealthy(timeoutMs?: number): Promise<void>
  /**
   * Fail `primary` over to its replica: `kill` (SIGKILL, then wait for the promotion, then
   * restart it, empty, so it rejoins as a replica), `force` (`CLUSTER FAILOVER FORCE` on the
   * replica: no catch-up with the primary) or `manual` (`CLUSTER FAILOVER`: coordinated, the
   * replica catches up first). Resolves when the cluster is healthy again.
   */
  failover(primary: ReplicatedNode, kind: 'kill' | 'force' | 'manual'): Promise<FailoverTiming>
  stop(): Promise<void>
}

/** A cluster node's arguments; with a proxy, the node announces the proxy's port (and its own bus port). */
function clusterNodeArgs(nodeTimeoutMs: number, port: number, proxyPort: number | undefined): string[] {
  return [
    '--cluster-enabled',
    'yes',
    '--cluster-config-file',
    'nodes.conf',
    '--cluster-node-timeout',
    String(nodeTimeoutMs),
    // Any replica may take over, however long it was cut off: the tests kill primaries on purpose.
    '--cluster-replica-validity-factor',
    '0',
    '--cluster-allow-replica-migration',
    'no',
    // Resynchronise a restarted node at once (the default waits 5 s for more replicas).
    '--repl-diskless-sync',
    'yes',
    '--repl-diskless-sync-delay',
    '0',
    ...(proxyPort === undefined
      ? []
      : ['--cluster-announce-port', String(proxyPort), '--cluster-announce-bus-port', String(port + 10_000)]),
  ]
}

/**
 * Start `primaries` primaries and one replica each (redis-server on loopback ports, no
 * persistence, a small `cluster-node-timeout`), with a lag proxy in front of every node unless
 * `lagMs` is false: the nodes announce the proxies' ports, so clients and replication both
 * go through them, and the replication stream can be delayed. Stopped by PID.
 */
export async function startReplicatedCluster(
  options: { primaries?: number; lagMs?: number | false; nodeTimeoutMs?: number } = {},
): Promise<ReplicatedCluster> {
  const primaries = options.primaries ?? 3
  const lagMs = options.lagMs ?? 0
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 1000
  const dir = mkdtempSync(join(tmpdir(), 'andromeda-replicated-cluster-'))
  const nodes = await startNodes(
    primaries * 2,
    dir,
    (port, proxyPort) => clusterNodeArgs(nodeTimeoutMs, port, proxyPort),
    lagMs,
  )
  const cluster = makeCluster(nodes, dir)
  try {
    await formCluster(nodes, primaries)
    await cluster.waitHealthy(30_000)
  } catch (error) {
    await cluster.stop()
    throw error
  }
  return cluster
}

/** The first `primaries` nodes share the slots; each of the others replicates one of them. */
async function formCluster(nodes: ReplicatedNode[], primaries: number): Promise<void> {
  for (const node of nodes) node.id = String(await command(node.serverPort, ['CLUSTER', 'MYID']))
  for (const node of nodes.slice(1)) {
    await command(nodes[0]!.serverPort, ['CLUSTER', 'MEET', '127.0.0.1', node.port, node.serverPort + 10_000])
  }
  const per = Math.floor(16384 / primaries)
  for (let i = 0; i < primaries; i++) {
    const last = i === primaries - 1 ? 16383 : (i + 1) * per - 1
    await command(nodes[i]!.serverPort, ['CLUSTER', 'ADDSLOTSRANGE', i * per, last])
  }
  await waitFor(async () => {
    for (const node of nodes) {
      const lines = parseNodes(String(await command(node.serverPort, ['CLUSTER', 'NODES'])))
      if (lines.length !== nodes.length) return false
      if (lines.some((l) => l.flags.includes('handshake') || l.flags.includes('noaddr'))) return false
      if (!lines.every((l) => nodes.some((n) => n.id === l.id && n.port === l.port))) return false
    }
    return true
  }, 'every cluster node to know the others')
  for (let i = 0; i < primaries; i++) {
    await command(nodes[primaries + i]!.serverPort, ['CLUSTER', 'REPLICATE', nodes[i]!.id])
  }
}

/** `CLUSTER NODES` as a live node sees it. */
async function view(nodes: ReplicatedNode[]): Promise<ClusterLine[]> {
  const live = nodes.find((n) => n.alive)
  if (!live) throw new Error('no cluster node is alive')
  return parseNodes(String(await command(live.serverPort, ['CLUSTER', 'NODES'])))
}

/** cluster_state:ok on every live node. */
async function clusterOk(nodes: ReplicatedNode[]): Promise<boolean> {
  for (const node of nodes.filter((n) => n.alive)) {
    const text = String(await command(node.serverPort, ['CLUSTER', 'INFO']))
    if (!text.includes('cluster_state:ok')) return false
  }
  return true
}

/** Every node up, cluster_state:ok everywhere, no node flagged failing, each primary with a replica in sync. */
async function clusterHealthy(cluster: ReplicatedCluster): Promise<boolean> {
  const { nodes } = cluster
  if (nodes.some((n) => !n.alive)) return false
  if (!(await clusterOk(nodes))) return false
  const lines = await view(nodes)
  if (lines.some((l) => l.flags.includes('fail') || l.flags.includes('fail?'))) return false
  const pairs = await cluster.topology()
  for (const { replica } of pairs) if (!replica || !(await replica.replicaInSync())) return false
  return true
}

/** `replica` answers as a primary, and every live node routes the slots to it. */
async function promoted(nodes: ReplicatedNode[], replica: ReplicatedNode): Promise<boolean> {
  if ((await replica.role()) !== 'master' || !(await clusterOk(nodes))) return false
  for (const node of nodes.filter((n) => n.alive)) {
    const lines = parseNodes(String(await command(node.serverPort, ['CLUSTER', 'NODES'])))
    if (!lines.find((l) => l.id === replica.id)?.flags.includes('master')) return false
  }
  return true
}

/** How long a manual or forced failover is given before it is asked again (> 2 x the node timeout). */
const FAILOVER_RETRY_MS = 3_000

async function failoverCluster(
  cluster: ReplicatedCluster,
  primary: ReplicatedNode,
  kind: 'kill' | 'force' | 'manual',
): Promise<FailoverTiming> {
  const startedAt = performance.now()
  const replica = (await cluster.topology()).find((p) => p.primary === primary)?.replica
  if (!replica) throw new Error(`${primary.name} is not a primary with a replica`)
  if (kind === 'kill') {
    await primary.kill()
    await waitFor(() => promoted(cluster.nodes, replica), `${replica.name} to take over from ${primary.name}`, 30_000)
  } else {
    // A replica asks the primaries for their votes; a primary that voted for a replica of the
    // same shard within 2 x cluster-node-timeout refuses, and the replica gives up. A failover
    // soon after the last one of its shard is asked again until it takes (bounded).
    const asked = kind === 'force' ? ['CLUSTER', 'FAILOVER', 'FORCE'] : ['CLUSTER', 'FAILOVER']
    let lastAskedAt = 0
    await waitFor(
      async () => {
        if (await promoted(cluster.nodes, replica)) return true
        if (performance.now() - lastAskedAt >= FAILOVER_RETRY_MS) {
          lastAskedAt = performance.now()
          await command(replica.serverPort, asked).catch(() => undefined)
        }
        return false
      },
      `${replica.name} to take over from ${primary.name}`,
      30_000,
    )
  }
  const promotedMs = performance.now() - startedAt
  // Restarted empty (no persistence) only now: before the promotion it would come back
  // as the primary of its slots with nothing in them.
  if (kind === 'kill') await primary.restart()
  await cluster.waitHealthy(30_000)
  return { kind, from: primary.name, to: replica.name, promotedMs, healthyMs: performance.now() - startedAt }
}

function makeCluster(nodes: ReplicatedNode[], dir: string): ReplicatedCluster {
  const byId = (id: string) => nodes.find((n) => n.id === id)
  const cluster: ReplicatedCluster = {
    nodes,
    seeds: nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
    setLagMs(lagMs) {
      for (const node of nodes) if (node.proxy) node.proxy.lagMs = lagMs
    },
    async topology() {
      const lines = await view(nodes)
      return lines
        .filter((l) => l.flags.includes('master') && !l.flags.includes('fail'))
        .map((l) => ({
          primary: byId(l.id)!,
          replica: byId(lines.find((r) => r.masterId === l.id && r.flags.includes('slave'))?.id ?? ''),
        }))
    },
    async waitHealthy(timeoutMs = 20_000) {
      await waitFor(() => clusterHealthy(cluster), 'the replicated cluster to be healthy', timeoutMs)
    },
    failover: (primary, kind) => failoverCluster(cluster, primary, kind),
    async stop() {
      await Promise.all(nodes.map((n) => stopNode(n)))
      rmSync(dir, { recursive: true, force: true })
    },
  }
  return cluster
}
