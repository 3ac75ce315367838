import type { NodeRedisLike } from './clients.js'
import { nodeRedisClusterRoute, type RouteSend } from './cluster-routes.js'
import { clockOffsetsOf, type Driver } from './driver.js'
import { NotSentError } from './errors.js'
import { readinessGate } from './readiness-gate.js'
import { acknowledged, chainsFor } from './replicas.js'

/** A node-redis cluster (`createCluster`), as far as the driver uses it. */
interface NodeRedisCluster {
  masters: unknown[]
  nodeClient(node: unknown): NodeRedisLike | Promise<NodeRedisLike>
  sendCommand(
    firstKey: string,
    isReadonly: boolean,
    args: string[],
    options: { abortSignal: AbortSignal },
  ): Promise<unknown>
}

/** A node-redis client (`createClient`), as far as the driver uses it. */
interface NodeRedisClient {
  sendCommand(args: string[], options: { abortSignal: AbortSignal }): Promise<unknown>
}

type Route = ReturnType<typeof nodeRedisClusterRoute>

/** The driver for a node-redis client or cluster. */
export function nodeRedisDriver(client: NodeRedisLike): Driver {
  const cluster = typeof (client as { nodeClient?: unknown }).nodeClient === 'function'
  // WAIT must follow the script on its node's connection: a cluster then sends to the node.
  const route = cluster ? nodeRedisClusterRoute(client) : undefined
  // A node reconnecting may be a primary gone for good: read the slot map again, so its slots
  // go to the replica that takes over as soon as it does (node-redis 5 waits for a MOVED).
  const events = client as unknown as {
    on(event: string, listener: () => void): unknown
    off(event: string, listener: () => void): unknown
  }
  if (route) events.on('node-reconnecting', route.refresh)
  const run = scriptSender(client, cluster, route)
  // A single client: send only once it is ready (commands queued while it reconnects are not
  // always flushed promptly). A cluster has no such flag; its node clients queue, and the abort
  // signal withdraws what was never written.
  const single = client as NodeRedisLike & { isReady?: boolean }
  const gate = cluster ? undefined : singleClientGate(single)
  return {
    library: 'node-redis',
    cluster,
    clientKeyPrefix: '',
    withdraws: true,
    waits: true,
    isReady: () => client.isOpen && (cluster || single.isReady === true),
    ready: async (waitMs, signal) => {
      if (!client.isOpen) throw new NotSentError('the node-redis client is not open (call connect() first)')
      await gate?.wait(waitMs, signal)
    },
    evalsha: (sha, numKeys, keysAndArgs, abort, replicas) => run('evalsha', sha, numKeys, keysAndArgs, abort, replicas),
    eval: (lua, numKeys, keysAndArgs, abort, replicas) => run('eval', lua, numKeys, keysAndArgs, abort, replicas),
    clockOffsets: (abort) => clockOffsets(client, cluster, abort),
    notSent: isNotSent,
    dispose: () => {
      gate?.dispose()
      if (route) {
        events.off('node-reconnecting', route.refresh)
        route.dispose()
      }
    },
  }
}

/** Script calls, WAIT behind them when `replicas` is given (through the cluster route on a cluster). */
function scriptSender(client: NodeRedisLike, cluster: boolean, route: Route | undefined): RouteSend {
  const asCluster = client as unknown as NodeRedisCluster
  const asClient = client as unknown as NodeRedisClient
  // node-redis keeps a command in its offline queue until it is written; the abort signal
  // (fired at the deadline) takes it out again, so a timed-out command is never sent late.
  const send = (args: string[], firstKey: string, abort: AbortSignal | undefined) => {
    const options = abort ? { abortSignal: abort } : {}
    return cluster
      ? asCluster.sendCommand(firstKey, false, args, options as never)
      : asClient.sendCommand(args, options as never)
  }
  const waits = chainsFor((connection: NodeRedisClient, args) => connection.sendCommand(['WAIT', ...args], {} as never))
  return (command, head, numKeys, keysAndArgs, abort, replicas) => {
    if (replicas && route) return route.send(command, head, numKeys, keysAndArgs, abort, replicas)
    const script = send(
      [command === 'evalsha' ? 'EVALSHA' : 'EVAL', head, String(numKeys), ...keysAndArgs],
      keysAndArgs[0]!,
      abort,
    )
    if (!replicas) return route ? script.catch(refreshOnFault(route.refresh)) : script
    // Queued after the script, on the one connection. Not withdrawn at a deadline: one WAIT
    // serves many calls; late, it covers whatever was written before it.
    return acknowledged(script, waits(asClient, replicas).wait(), replicas)
  }
}

/**
 * node-redis 5 refreshes a cluster's slot map only on `MOVED`, which a dead primary never
 * sends: a command that could not reach its node refreshes it (a reply means the node is there).
 */
function refreshOnFault(refresh: () => void) {
  return (error: unknown): never => {
    if (!(error instanceof Error) || !['ErrorReply', 'SimpleError', 'BlobError'].includes(error.constructor.name))
      refresh()
    throw error
  }
}

function singleClientGate(single: NodeRedisLike & { isReady?: boolean }) {
  return readinessGate(
    single as unknown as Parameters<typeof readinessGate>[0],
    ['ready', 'end'],
    () => (single.isReady === true ? 'ready' : single.isOpen ? 'waiting' : 'closed'),
    () => (single.isOpen ? 'node-redis client reconnecting' : 'node-redis client not open: call connect() first'),
  )
}

async function clockOffsets(client: NodeRedisLike, cluster: boolean, abort: AbortSignal): Promise<number[]> {
  const asCluster = client as unknown as NodeRedisCluster
  const nodes: NodeRedisLike[] = cluster
    ? await Promise.all(asCluster.masters.map((m) => asCluster.nodeClient(m)))
    : [client]
  return clockOffsetsOf(
    nodes.map((node) => () => (node as unknown as NodeRedisClient).sendCommand(['TIME'], { abortSignal: abort })),
    abort,
  )
}

/** Errors with which node-redis rejects a command it never wrote to a socket. */
const NOT_SENT = new Set(['AbortError', 'ClientClosedError', 'ClientOfflineError'])
const NOT_SENT_MESSAGES = new Set(['The command was aborted', 'The client is closed', 'The client is offline'])

function isNotSent(error: unknown): boolean {
  return (
    error instanceof NotSentError ||
    (error instanceof Error && (NOT_SENT.has(error.constructor.name) || NOT_SENT_MESSAGES.has(error.message)))
  )
}
