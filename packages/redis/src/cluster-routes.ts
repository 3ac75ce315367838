import calculateSlot from 'cluster-key-slot'
import { NotSentError } from './errors.js'
import { acknowledged, chainsFor, type ReplicasOptions } from './replicas.js'

/**
 * Sending a script call to the primary of its slot over that node's own connection, instead
 * of through the cluster client's command path, for two reasons:
 *
 * - ioredis `Cluster` resends a command whose connection closed (`retryDelayOnFailover`),
 *   and one that met `CLUSTERDOWN` or `TRYAGAIN`, up to `maxRedirections` times. A script call
 *   written to a primary that ran it, replicated it and died is then run again by the promoted
 *   replica: counted twice (a refund taken off twice sells a unit twice). Sent on the node's
 *   connection, a call goes out once; its failure comes back to the store, which knows whether
 *   a retry is safe.
 * - `WAIT` has no key, so only the node's own connection can carry it right behind the script.
 *
 * A redirection (`MOVED`, `ASK`) means the node did not run the call: it fails as retryable,
 * and the cluster client refreshes its slot map so the next call goes to the right node.
 */

/** Send EVALSHA or EVAL with `numKeys` keys, and the WAIT behind it when `replicas` is given. */
export type RouteSend = (
  command: 'evalsha' | 'eval',
  head: string,
  numKeys: number,
  keysAndArgs: string[],
  abort: AbortSignal | undefined,
  replicas: ReplicasOptions | undefined,
) => Promise<unknown>

/** Refreshing the slot map after a fault costs a CLUSTER SLOTS: at most one per this long. */
const REFRESH_EVERY_MS = 200

function throttled(refresh: () => void): () => void {
  let lastAt = Number.NEGATIVE_INFINITY
  return () => {
    const now = performance.now()
    if (now - lastAt < REFRESH_EVERY_MS) return
    lastAt = now
    try {
      refresh()
    } catch {}
  }
}

const REDIRECTED = /^(MOVED|ASK|CLUSTERDOWN|TRYAGAIN|READONLY)\b/

/** An ioredis node connection, as far as the route uses it. */
interface IoRedisNode {
  status: string
  options: { keyPrefix?: string | undefined }
  connect(): Promise<void>
  evalsha(sha: string, numKeys: number, keysAndArgs: string[]): Promise<unknown>
  eval(lua: string, numKeys: number, keysAndArgs: string[]): Promise<unknown>
  call(command: string, ...args: string[]): Promise<unknown>
  on(event: string, listener: () => void): unknown
}

/** An ioredis `Cluster`, as far as the route uses it (`connectionPool` is not in its types). */
interface IoRedisCluster {
  slots: string[][]
  options: { keyPrefix?: string | undefined; redisOptions?: { keyPrefix?: string | undefined } | undefined }
  connectionPool?: { getInstanceByKey(key: string): IoRedisNode | undefined }
  refreshSlotsCache(callback?: () => void): void
}

/**
 * The route for an ioredis `Cluster`; undefined when this ioredis has no connection pool to
 * reach, or when its `keyPrefix` and `redisOptions.keyPrefix` cannot both hold (then the
 * cluster's own command path is used).
 */
export function ioredisClusterRoute(client: unknown): RouteSend | undefined {
  const cluster = client as IoRedisCluster
  const pool = cluster.connectionPool
  if (!pool || typeof pool.getInstanceByKey !== 'function' || !Array.isArray(cluster.slots)) return undefined
  // The cluster adds `keyPrefix` to the keys of its commands; a node adds its own
  // (`redisOptions.keyPrefix`) to ours. Add what the node does not.
  const clusterPrefix = cluster.options?.keyPrefix ?? ''
  const nodePrefix = cluster.options?.redisOptions?.keyPrefix ?? ''
  if (!clusterPrefix.startsWith(nodePrefix)) return undefined
  const extraPrefix = clusterPrefix.slice(nodePrefix.length)
  const refresh = throttled(() => cluster.refreshSlotsCache())
  const waits = chainsFor((node: IoRedisNode, args) => node.call('WAIT', ...args))
  // How many times each node connection became ready: one listener per connection, however
  // many calls wait for it.
  const readyCounts = new WeakMap<IoRedisNode, { count: number }>()
  const readyCount = (node: IoRedisNode) => {
    let seen = readyCounts.get(node)
    if (!seen) {
      const counter = { count: 0 }
      node.on('ready', () => {
        counter.count++
      })
      readyCounts.set(node, counter)
      seen = counter
    }
    return seen
  }

  return (command, head, numKeys, keysAndArgs, _abort, replicas) => {
    const slot = calculateSlot(clusterPrefix + keysAndArgs[0]!)
    const address = cluster.slots[slot]?.[0]
    const node = address === undefined ? undefined : pool.getInstanceByKey(address)
    if (!node || node.status === 'end' || node.status === 'close') {
      refresh()
      return Promise.reject(new NotSentError(`no connection to the primary of slot ${slot} (${address ?? 'unknown'})`))
    }
    let args = keysAndArgs
    if (extraPrefix !== '') {
      args = keysAndArgs.slice()
      for (let i = 0; i < numKeys; i++) args[i] = extraPrefix + args[i]
    }
    // A node connection not ready yet keeps the command in its offline queue and writes it
    // once ready; if it closes first, the command was never written.
    const ready = node.status === 'ready'
    const seen = ready ? undefined : readyCount(node)
    const readiesBefore = seen?.count ?? 0
    if (node.status === 'wait') node.connect().catch(() => {})
    const script = (command === 'evalsha' ? node.evalsha(head, numKeys, args) : node.eval(head, numKeys, args)).catch(
      (error: unknown) => {
        const connected = ready || seen!.count > readiesBefore
        const message = error instanceof Error ? error.message : ''
        if (REDIRECTED.test(message) || !connected || !isReply(error)) refresh()
        if (!connected)
          throw new NotSentError(`the connection to ${address} closed before the command was written: ${message}`)
        throw error
      },
    )
    return replicas ? acknowledged(script, waits(node, replicas).wait(), replicas) : script
  }
}

function isReply(error: unknown): boolean {
  return error instanceof Error && (error.name === 'ReplyError' || error.constructor.name === 'ReplyError')
}

/** Classes of node-redis error replies (RESP2, RESP3). */
const NODE_REDIS_REPLY = new Set(['ErrorReply', 'SimpleError', 'BlobError'])

/** A node-redis node client, as far as the route uses it. */
interface NodeRedisNode {
  sendCommand(args: string[], options?: { abortSignal?: AbortSignal }): Promise<unknown>
}

/** A node-redis cluster (v5, v6), as far as the route uses it. */
interface NodeRedisCluster {
  slots: ({ master?: unknown } | undefined)[]
  masters: { client?: NodeRedisNode & { isReady?: boolean } }[]
  nodeClient(node: unknown): NodeRedisNode | Promise<NodeRedisNode>
  _slots?: { rediscover?(startWith: unknown): Promise<void> }
}

/** While a primary's connection is down, the slot map is read again this often (ms). */
const RECHECK_EVERY_MS = 500

/**
 * The route for a node-redis cluster, used when WAIT must follow the script (node-redis
 * never resends a written command, so its own path is kept otherwise). Its slot map is
 * refreshed on a redirection, when a command cannot reach its node, and from then on every
 * 500 ms while a primary's connection is down: node-redis 5 waits for a `MOVED` otherwise,
 * which a dead primary never sends, so the replica that takes over would get no command.
 */
export function nodeRedisClusterRoute(client: unknown): { send: RouteSend; refresh(): void; dispose(): void } {
  const cluster = client as NodeRedisCluster
  const rediscover = throttled(() => {
    // Start from a node that answers: rediscovery tries its first node before the root nodes.
    const live = cluster.masters.find((m) => m.client?.isReady)?.client
    if (live) cluster._slots?.rediscover?.(live).catch(() => {})
  })
  const waits = chainsFor((node: NodeRedisNode, args) => node.sendCommand(['WAIT', ...args]))
  let recheck: ReturnType<typeof setTimeout> | undefined
  const refresh = () => {
    rediscover()
    if (recheck) return
    recheck = setTimeout(() => {
      recheck = undefined
      if (cluster.masters.some((m) => !m.client?.isReady)) refresh()
    }, RECHECK_EVERY_MS)
    recheck.unref?.()
  }
  const send: RouteSend = (command, head, numKeys, keysAndArgs, abort, replicas) => {
    const master = cluster.slots[calculateSlot(keysAndArgs[0]!)]?.master
    if (master === undefined) {
      // A slot map read in the middle of a failover can miss a range.
      refresh()
      return Promise.reject(new NotSentError('the node-redis cluster knows no primary for this slot'))
    }
    const go = (node: NodeRedisNode) => {
      const options = abort ? { abortSignal: abort } : {}
      // The script, then (now or when the WAIT before it returns) a WAIT, on one connection.
      const script = node
        .sendCommand([command === 'evalsha' ? 'EVALSHA' : 'EVAL', head, String(numKeys), ...keysAndArgs], options)
        .catch((error: unknown) => {
          if (
            !(error instanceof Error) ||
            REDIRECTED.test(error.message) ||
            !NODE_REDIS_REPLY.has(error.constructor.name)
          )
            refresh()
          throw error
        })
      return replicas ? acknowledged(script, waits(node, replicas).wait(), replicas) : script
    }
    const node = cluster.nodeClient(master)
    return node instanceof Promise ? node.then(go) : go(node)
  }
  return { send, refresh, dispose: () => clearTimeout(recheck) }
}
