import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { info } from './admin.js'
import { type LagProxy, startLagProxy } from './lag-proxy.js'
import { freePort, type OwnRedis, startRedis } from './own-redis.js'

/**
 * One redis-server of a replicated setup, with the lag proxy in front of it when there is one.
 * Clients and replicas reach it on `port`; the tests' own admin commands go to `serverPort`.
 */
export class ReplicatedNode {
  id = ''
  constructor(
    /** A name for reports: `n0`, `n1`, ... */
    readonly name: string,
    readonly server: OwnRedis,
    readonly proxy: LagProxy | undefined,
  ) {}

  /** The port clients and replicas use: the proxy's, or the server's own. */
  get port(): number {
    return this.proxy?.port ?? this.server.port
  }

  get serverPort(): number {
    return this.server.port
  }

  alive = true

  /** SIGKILL: a crash. Its proxy stops accepting, as an address with nothing behind it would. */
  async kill(): Promise<void> {
    this.alive = false
    await this.proxy?.pause()
    await this.server.kill()
  }

  async restart(moreArgs: string[] = []): Promise<void> {
    await this.server.start(moreArgs)
    await this.proxy?.resume()
    this.alive = true
  }

  /** `master` or `slave`, as the server says of itself. */
  async role(): Promise<string> {
    return (await info(this.serverPort, 'replication')).get('role') ?? 'unknown'
  }

  /** A replica whose link to its primary is up and not in a full sync. */
  async replicaInSync(): Promise<boolean> {
    const fields = await info(this.serverPort, 'replication')
    return (
      fields.get('role') === 'slave' &&
      fields.get('master_link_status') === 'up' &&
      fields.get('master_sync_in_progress') === '0'
    )
  }
}

/** What one failover took, in ms from its start. */
export interface FailoverTiming {
  kind: string
  /** The node that was primary before. */
  from: string
  /** The node that is primary after. */
  to: string
  /** Until the new primary answered as one and every live node agreed (cluster_state:ok). */
  promotedMs: number
  /** Until the old primary was back as a replica of the new one, in sync. */
  healthyMs: number
}

/** Start a lag proxy in front of each server, or none when `lagMs` is false. */
export async function proxyFor(serverPort: number, lagMs: number | false): Promise<LagProxy | undefined> {
  return lagMs === false ? undefined : startLagProxy(serverPort, { lagMs, port: await freePort() })
}

/** Start `count` servers (each in `dir`/n<i>), with a lag proxy each unless `lagMs` is false. */
export async function startNodes(
  count: number,
  dir: string,
  args: (port: number, proxyPort: number | undefined, i: number) => string[],
  lagMs: number | false,
): Promise<ReplicatedNode[]> {
  const nodes: ReplicatedNode[] = []
  try {
    for (let i = 0; i < count; i++) {
      const nodeDir = join(dir, `n${i}`)
      mkdirSync(nodeDir, { recursive: true })
      const port = await freePort()
      const proxy = await proxyFor(port, lagMs)
      const server = await startRedis(['--loglevel', 'warning', ...args(port, proxy?.port, i)], port, nodeDir).catch(
        async (error) => {
          await proxy?.close()
          throw error
        },
      )
      nodes.push(new ReplicatedNode(`n${i}`, server, proxy))
    }
  } catch (error) {
    await Promise.all(nodes.map((n) => stopNode(n)))
    throw error
  }
  return nodes
}

export async function stopNode(node: ReplicatedNode): Promise<void> {
  await node.proxy?.close()
  await node.server.stop()
}
