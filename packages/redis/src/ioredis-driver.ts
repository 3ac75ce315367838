import type { IoRedisLike } from './clients.js'
import { ioredisClusterRoute, type RouteSend } from './cluster-routes.js'
import { clockOffsetsOf, type Driver } from './driver.js'
import { NotSentError } from './errors.js'
import { readinessGate } from './readiness-gate.js'
import { acknowledged, chainsFor } from './replicas.js'

/** The driver for an ioredis `Redis` or `Cluster`. */
export function ioredisDriver(client: IoRedisLike): Driver {
  const cluster = client.isCluster === true
  // Commands are sent only while the client is ready: ioredis would otherwise park them in its
  // offline queue and send them whenever it reconnects, long after we gave up on them.
  const gate = readinessGate(
    client,
    ['ready', 'end', 'close'],
    () => (client.status === 'ready' ? 'ready' : client.status === 'end' ? 'closed' : 'waiting'),
    () => `ioredis status "${client.status}"`,
  )
  const ready = (waitMs: number, signal?: AbortSignal): Promise<void> => {
    if (client.status === 'wait') client.connect().catch(() => {}) // lazyConnect: the first command connects
    return gate.wait(waitMs, signal)
  }
  // A Cluster's script calls go to the slot's primary on its own connection (see cluster-routes.ts).
  const route = cluster ? ioredisClusterRoute(client) : undefined
  const run = route ?? sendOnClient(client)
  const nodesOf = (): IoRedisLike[] =>
    cluster ? (client as unknown as { nodes(role: string): IoRedisLike[] }).nodes('master') : [client]

  return {
    library: 'ioredis',
    cluster,
    clientKeyPrefix: client.options?.keyPrefix ?? client.options?.redisOptions?.keyPrefix ?? '',
    withdraws: false,
    waits: !cluster || route !== undefined,
    isReady: () => client.status === 'ready',
    ready,
    evalsha: (sha, numKeys, keysAndArgs, abort, replicas) => run('evalsha', sha, numKeys, keysAndArgs, abort, replicas),
    eval: (lua, numKeys, keysAndArgs, abort, replicas) => run('eval', lua, numKeys, keysAndArgs, abort, replicas),
    clockOffsets: (abort) =>
      clockOffsetsOf(
        nodesOf().map((node) => () => (node as unknown as { time(): Promise<unknown> }).time()),
        abort,
      ),
    notSent: (error) => error instanceof NotSentError,
    dispose: () => gate.dispose(),
  }
}

/** Script calls on the client itself (a single `Redis`, or a Cluster whose nodes cannot be reached), WAIT behind them. */
function sendOnClient(client: IoRedisLike): RouteSend {
  // ioredis flattens array arguments one level (Command's args.flat()), so the store's array
  // goes out as it is, without a copy per call.
  const send = client.evalsha as unknown as (sha: string, numKeys: number, keysAndArgs: string[]) => Promise<unknown>
  const sendLua = client.eval as unknown as (lua: string, numKeys: number, keysAndArgs: string[]) => Promise<unknown>
  const waits = chainsFor((connection: { call(...args: string[]): Promise<unknown> }, args) =>
    connection.call('WAIT', ...args),
  )
  return (command, head, numKeys, keysAndArgs, _abort, replicas) => {
    const script = (command === 'evalsha' ? send : sendLua).call(client, head, numKeys, keysAndArgs)
    if (!replicas) return script
    // Written after the script, on the one connection.
    return acknowledged(script, waits(client as never, replicas).wait(), replicas)
  }
}
