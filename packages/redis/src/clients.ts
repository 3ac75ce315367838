import { type RouteSend, ioredisClusterRoute, nodeRedisClusterRoute } from './cluster-routes.js'
import { NoReplyError, NotSentError } from './errors.js'
import { type ReplicasOptions, acknowledged, chainsFor } from './replicas.js'

/**
 * Thin adapters over the client libraries a user already has: ioredis `Redis` / `Cluster` and
 * node-redis (`redis` / `@redis/client`) clients and clusters, RESP2 or RESP3. Only what the
 * store needs: send EVALSHA / EVAL routed by the first key, read each primary's clock, and tell
 * whether a failed command surely never reached the server.
 *
 * Nothing here imports the libraries: they are optional peer dependencies, recognised by shape.
 */

/**
 * An ioredis `Redis` or `Cluster` (v5.8+ or v6), as far as the store uses it. Optional members
 * admit `undefined` so ioredis's own types fit under `exactOptionalPropertyTypes`.
 */
export interface IoRedisLike {
  status: string
  options?: { keyPrefix?: string | undefined; redisOptions?: { keyPrefix?: string | undefined } | undefined } | undefined
  isCluster?: boolean
  evalsha(sha: string, numKeys: number, ...keysAndArgs: string[]): Promise<unknown>
  eval(script: string, numKeys: number, ...keysAndArgs: string[]): Promise<unknown>
  connect(): Promise<void>
  on(event: string, listener: (...args: any[]) => void): unknown
  off(event: string, listener: (...args: any[]) => void): unknown
}

/** A node-redis client (`createClient`) or cluster (`createCluster`), v5 or v6, as far as the store uses it. */
export interface NodeRedisLike {
  readonly isOpen: boolean
  sendCommand(...args: any[]): Promise<unknown>
}

/** Any client `createRedisStore` accepts. */
export type RedisClientLike = IoRedisLike | NodeRedisLike

export { NoReplyError, NotSentError } from './errors.js'

export interface Driver {
  readonly library: 'ioredis' | 'node-redis'
  readonly cluster: boolean
  /** The client's own key prefix (ioredis `keyPrefix`), added to every key by the client. */
  readonly clientKeyPrefix: string
  /**
   * True when the client keeps a command it has not written yet in a queue of its own, from
   * which an `AbortSignal` withdraws it (node-redis): the store then hands every command a
   * signal that fires at its deadline. ioredis takes no signal; the store sends to it only
   * while it is ready.
   */
  readonly withdraws: boolean
  /**
   * False when WAIT cannot be sent on the connection of a script call's node (an ioredis
   * Cluster whose nodes this driver cannot reach): the `replicas` option is then refused.
   */
  readonly waits: boolean
  /** True when a command may be sent now (a cheap check, made on every call). */
  isReady(): boolean
  /** Resolve when a command may be sent; reject with NotSentError when `waitMs` passes first. */
  ready(waitMs: number, signal?: AbortSignal): Promise<void>
  /**
   * EVALSHA routed by the first key. `keysAndArgs` holds the `numKeys` keys, then the
   * arguments; it is handed to the client as it is (no copy). `abort`: see `withdraws`.
   * With `replicas`, `WAIT` goes right behind it on the same connection and the answer is an
   * `Acknowledged` (see `replicas.ts`).
   */
  evalsha(sha: string, numKeys: number, keysAndArgs: string[], abort?: AbortSignal, replicas?: ReplicasOptions): Promise<unknown>
  /** EVAL routed by the first key (loads the script on that node as a side effect); `replicas` as for `evalsha`. */
  eval(lua: string, numKeys: number, keysAndArgs: string[], abort?: AbortSignal, replicas?: ReplicasOptions): Promise<unknown>
  /**
   * For each primary that answers: its clock minus ours (`performance.now()`, which no wall
   * clock step moves) at the moment its answer arrived (ms).
   */
  clockOffsets(abort: AbortSignal): Promise<number[]>
  /** True when `error` proves the command never reached the server. */
  notSent(error: unknown): boolean
  /** Detach every listener this driver added to the client. */
  dispose(): void
}

function timeToMs(reply: unknown): number {
  if (!Array.isArray(reply) || reply.length < 2) throw new Error(`unexpected TIME reply: ${String(reply)}`)
  return Number(reply[0]) * 1000 + Math.floor(Number(reply[1]) / 1000)
}

/** Resolve the offsets that answered; reject only if none did. */
async function offsetsOf(probes: Promise<number>[]): Promise<number[]> {
  const settled = await Promise.allSettled(probes)
  const offsets = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  if (offsets.length === 0) {
    const first = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
    throw first?.reason ?? new Error('no Redis primary answered TIME')
  }
  return offsets
}

/** Used by the clock calibration only: the store's deadline queue bounds the script calls. */
function raceAbort<T>(promise: Promise<T>, abort: AbortSignal): Promise<T> {
  if (abort.aborted) return Promise.reject(new NotSentError('deadline passed before sending'))
  return new Promise<T>((resolve, reject) => {
    // Deferred one turn: node-redis rejects a command still in its queue on the same abort
    // (AbortError, proof it was never written), and that answer must win over ours.
    const onAbort = () => setImmediate(() => reject(new NoReplyError('no reply before the deadline')))
    abort.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        abort.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error) => {
        abort.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

function isIoRedis(client: object): client is IoRedisLike {
  const c = client as Partial<IoRedisLike>
  return typeof c.status === 'string' && typeof c.evalsha === 'function' && typeof c.eval === 'function'
}

function isNodeRedis(client: object): client is NodeRedisLike {
  const c = client as Partial<NodeRedisLike>
  return typeof c.sendCommand === 'function' && 'isOpen' in c
}

/** Build the driver for a user's client; undefined when the client is not recognised. */
export function toDriver(client: unknown): Driver | undefined {
  if (typeof client !== 'object' || client === null) return undefined
  if (isIoRedis(client)) return ioredisDriver(client)
  if (isNodeRedis(client)) return nodeRedisDriver(client)
  return undefined
}

type Readiness = 'ready' | 'closed' | 'waiting'

/**
 * Waits for a client to become ready, with one listener per event on the client however many
 * calls wait (no MaxListeners warning under load). `state()` reads the client's status.
 */
function readinessGate(
  client: { on(event: string, listener: () => void): unknown; off(event: string, listener: () => void): unknown },
  events: string[],
  state: () => Readiness,
  describe: () => string,
) {
  const waiters = new Set<() => void>()
  const wake = () => {
    for (const waiter of [...waiters]) waiter()
  }
  for (const event of events) client.on(event, wake)
  const closed = () => new NotSentError(`the client is closed (${describe()})`)

  return {
    wait(waitMs: number, signal?: AbortSignal): Promise<void> {
      const now = state()
      if (now === 'ready') return Promise.resolve()
      if (now === 'closed') return Promise.reject(closed())
      return new Promise<void>((resolve, reject) => {
        const finish = (error?: unknown) => {
          waiters.delete(check)
          clearTimeout(timer)
          signal?.removeEventListener('abort', onAbort)
          if (error) reject(error)
          else resolve()
        }
        const check = () => {
          const current = state()
          if (current === 'ready') finish()
          else if (current === 'closed') finish(closed())
        }
        const onAbort = () => finish(signal?.reason)
        const timer = setTimeout(
          () => finish(new NotSentError(`the client did not become ready in time (${describe()})`)),
          Math.max(waitMs, 0),
        )
        waiters.add(check)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    },
    dispose() {
      for (const event of events) client.off(event, wake)
      wake()
    },
  }
}

function ioredisDriver(client: IoRedisLike): Driver {
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
  // ioredis flattens array arguments one level (Command's args.flat()), so the store's array
  // goes out as it is, without a copy per call.
  const send = client.evalsha as unknown as (sha: string, numKeys: number, keysAndArgs: string[]) => Promise<unknown>
  const sendLua = client.eval as unknown as (lua: string, numKeys: number, keysAndArgs: string[]) => Promise<unknown>
  // A Cluster's script calls go to the slot's primary on its own connection (see cluster-routes.ts).
  const route = cluster ? ioredisClusterRoute(client) : undefined
  const waits = chainsFor((connection: { call(...args: string[]): Promise<unknown> }, args) => connection.call('WAIT', ...args))
  const run: RouteSend =
    route ??
    ((command, head, numKeys, keysAndArgs, _abort, replicas) => {
      const script = (command === 'evalsha' ? send : sendLua).call(client, head, numKeys, keysAndArgs)
      if (!replicas) return script
      // Written after the script, on the one connection.
      return acknowledged(script, waits(client as never, replicas).wait(), replicas)
    })

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
      offsetsOf(
        nodesOf().map((node) =>
          raceAbort((node as unknown as { time(): Promise<unknown> }).time(), abort).then((reply) => timeToMs(reply) - performance.now()),
        ),
      ),
    notSent: (error) => error instanceof NotSentError,
    dispose: () => gate.dispose(),
  }
}

/**
 * node-redis 5 refreshes a cluster's slot map only on `MOVED`, which a dead primary never
 * sends: a command that could not reach its node refreshes it (a reply means the node is there).
 */
function refreshOnFault(refresh: () => void) {
  return (error: unknown): never => {
    if (!(error instanceof Error) || !['ErrorReply', 'SimpleError', 'BlobError'].includes(error.constructor.name)) refresh()
    throw error
  }
}

/** Errors with which node-redis rejects a command it never wrote to a socket. */
const NODE_REDIS_NOT_SENT = new Set(['AbortError', 'ClientClosedError', 'ClientOfflineError'])
const NODE_REDIS_NOT_SENT_MESSAGES = new Set(['The command was aborted', 'The client is closed', 'The client is offline'])

function nodeRedisDriver(client: NodeRedisLike): Driver {
  type Node = NodeRedisLike
  const cluster = typeof (client as { nodeClient?: unknown }).nodeClient === 'function'
  const asCluster = client as unknown as {
    masters: unknown[]
    nodeClient(node: unknown): Node | Promise<Node>
    sendCommand(firstKey: string, isReadonly: boolean, args: string[], options: { abortSignal: AbortSignal }): Promise<unknown>
  }
  const asClient = client as unknown as {
    sendCommand(args: string[], options: { abortSignal: AbortSignal }): Promise<unknown>
  }
  // node-redis keeps a command in its offline queue until it is written; the abort signal
  // (fired at the deadline) takes it out again, so a timed-out command is never sent late.
  const send = (args: string[], firstKey: string, abort: AbortSignal | undefined) => {
    const options = abort ? { abortSignal: abort } : {}
    return cluster ? asCluster.sendCommand(firstKey, false, args, options as never) : asClient.sendCommand(args, options as never)
  }
  // WAIT must follow the script on its node's connection: a cluster then sends to the node.
  const route = cluster ? nodeRedisClusterRoute(client) : undefined
  const waits = chainsFor((connection: typeof asClient, args) => connection.sendCommand(['WAIT', ...args], {} as never))
  // A node reconnecting may be a primary gone for good: read the slot map again, so its slots
  // go to the replica that takes over as soon as it does (node-redis 5 waits for a MOVED).
  const events = client as unknown as { on(event: string, listener: () => void): unknown; off(event: string, listener: () => void): unknown }
  if (route) events.on('node-reconnecting', route.refresh)
  const run: RouteSend = (command, head, numKeys, keysAndArgs, abort, replicas) => {
    if (replicas && route) return route.send(command, head, numKeys, keysAndArgs, abort, replicas)
    const script = send([command === 'evalsha' ? 'EVALSHA' : 'EVAL', head, String(numKeys), ...keysAndArgs], keysAndArgs[0]!, abort)
    if (!replicas) return route ? script.catch(refreshOnFault(route.refresh)) : script
    // Queued after the script, on the one connection. Not withdrawn at a deadline: one WAIT
    // serves many calls; late, it covers whatever was written before it.
    return acknowledged(script, waits(asClient, replicas).wait(), replicas)
  }

  // A single client: send only once it is ready (commands queued while it reconnects are not
  // always flushed promptly). A cluster has no such flag; its node clients queue, and the abort
  // signal withdraws what was never written.
  const single = client as NodeRedisLike & { isReady?: boolean }
  const gate = cluster
    ? undefined
    : readinessGate(
        client as unknown as Parameters<typeof readinessGate>[0],
        ['ready', 'end'],
        () => (single.isReady === true ? 'ready' : single.isOpen ? 'waiting' : 'closed'),
        () => (single.isOpen ? 'node-redis client reconnecting' : 'node-redis client not open: call connect() first'),
      )
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
    clockOffsets: async (abort) => {
      const nodes: Node[] = cluster ? await Promise.all(asCluster.masters.map((m) => asCluster.nodeClient(m))) : [client]
      return offsetsOf(
        nodes.map((node) =>
          raceAbort(
            (node as unknown as { sendCommand(args: string[], o: { abortSignal: AbortSignal }): Promise<unknown> }).sendCommand(['TIME'], {
              abortSignal: abort,
            }),
            abort,
          ).then((reply) => timeToMs(reply) - performance.now()),
        ),
      )
    },
    notSent: (error) =>
      error instanceof NotSentError ||
      (error instanceof Error && (NODE_REDIS_NOT_SENT.has(error.constructor.name) || NODE_REDIS_NOT_SENT_MESSAGES.has(error.message))),
    dispose: () => {
      gate?.dispose()
      if (route) {
        events.off('node-reconnecting', route.refresh)
        route.dispose()
      }
    },
  }
}
