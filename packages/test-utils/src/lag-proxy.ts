import { connect, createServer, type Server, type Socket } from 'node:net'

/**
 * A TCP proxy on a loopback port in front of one redis-server, that can delay what the server
 * sends on replication links: a connection becomes one once its client sends `PSYNC` (a
 * replica's handshake), and from then on every chunk from the server reaches the replica
 * `lagMs` later, in order. Other connections (clients, Sentinel) pass through undelayed.
 *
 * Replication in Redis is asynchronous: a primary answers a write before its replicas have it.
 * On loopback the stream is too fast for a failover to lose anything; this makes the gap of a
 * real network visible, so a test can show a loss and a durability option closing it.
 */
export interface LagProxy {
  /** The port clients (and replicas) connect to. */
  readonly port: number
  /** Delay of the server-to-replica stream from now on (0: none). */
  lagMs: number
  /** Delay of the replies on every other connection from now on (0: none). */
  replyLagMs: number
  /** Drop every connection now (what the server sent and the proxy still holds is lost); keep accepting. */
  dropConnections(): void
  /** Stop accepting and drop every connection (the server went away). */
  pause(): Promise<void>
  /** Accept again, on the same port. */
  resume(): Promise<void>
  close(): Promise<void>
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject)
      resolve((server.address() as { port: number }).port)
    })
  })
}

/** The proxy's settings that change while it runs. */
interface Lags {
  lagMs: number
  replyLagMs: number
}

/** Start a proxy to `127.0.0.1:targetPort` on `port` (0: a free one). */
export async function startLagProxy(
  targetPort: number,
  options: { lagMs?: number; port?: number } = {},
): Promise<LagProxy> {
  const sockets = new Set<Socket>()
  const proxy: Lags = {
    lagMs: options.lagMs ?? 0,
    replyLagMs: 0,
  }
  const onConnection = (client: Socket) => relay(client, targetPort, sockets, proxy)

  let server = createServer(onConnection)
  const port = await listen(server, options.port ?? 0)
  const dropAll = () => {
    for (const socket of sockets) socket.destroy()
    sockets.clear()
  }
  const closeServer = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve()
      server.close(() => resolve())
      dropAll()
    })

  return Object.assign(proxy, {
    port,
    dropConnections: dropAll,
    pause: closeServer,
    async resume() {
      if (server.listening) return
      server = createServer(onConnection)
      await listen(server, port)
    },
    close: closeServer,
  })
}

/**
 * Connect `client` to the server and pass bytes both ways; the server's bytes are delayed by
 * `lags.lagMs` once the connection is a replication link, by `lags.replyLagMs` otherwise.
 */
function relay(client: Socket, targetPort: number, sockets: Set<Socket>, lags: Lags): void {
  const upstream = connect(targetPort, '127.0.0.1')
  // Small writes go out at once, as Redis and its clients send them (Nagle's algorithm
  // would hold them for the peer's delayed ACK, ~40 ms).
  client.setNoDelay(true)
  upstream.setNoDelay(true)
  sockets.add(client)
  sockets.add(upstream)
  let replication = false
  // When the last delayed chunk is due: later ones never overtake it.
  let lastDueAt = 0
  const drop = () => {
    client.destroy()
    upstream.destroy()
    sockets.delete(client)
    sockets.delete(upstream)
  }
  client.on('error', drop)
  upstream.on('error', drop)
  client.on('close', drop)
  upstream.on('close', drop)
  client.on('data', (chunk: Buffer) => {
    if (!replication && chunk.includes('PSYNC')) replication = true
    upstream.write(chunk)
  })
  upstream.on('data', (chunk: Buffer) => {
    const lag = replication ? lags.lagMs : lags.replyLagMs
    if (lag <= 0 && lastDueAt <= performance.now()) {
      client.write(chunk)
      return
    }
    const dueAt = Math.max(performance.now() + lag, lastDueAt)
    lastDueAt = dueAt
    setTimeout(() => {
      if (!client.destroyed) client.write(chunk)
    }, dueAt - performance.now())
  })
}
