import type { QuotaResult } from '@andromeda/core'
import type { QuotaGateOptions } from '@andromeda/core/http'

/** How the cases read a request, whatever object the framework hands to the options' functions. */
export interface RequestView<Req> {
  /** A request header (case-insensitive name), or undefined. */
  header(req: Req, name: string): string | undefined
  /** A query parameter, or undefined. */
  query(req: Req, name: string): string | undefined
  /** The path, without the query. */
  path(req: Req): string
  /** The method, upper case. */
  method(req: Req): string
}

/** What a case's custom 429 body is told (each framework's `onExceeded` gets at least this). */
export interface RefusalView {
  result: QuotaResult
  retryAfterSeconds?: number
}

/** One middleware: the shared gate options, plus a custom 429 answer through `onExceeded`. */
export interface GateSpec<Req> extends QuotaGateOptions<Req> {
  /** When set, the framework's `onExceeded` answers the 429 with this JSON body itself. */
  refusalBody?: (refusal: RefusalView) => unknown
}

/** An app the harness is serving on a loopback port. */
export interface ServedApp {
  /** `http://127.0.0.1:<port>` */
  url: string
  close(): Promise<void>
}

/**
 * What a framework adapter's test gives the table: how to read its request object, how to
 * create its middleware, and how to serve the standard app.
 *
 * The standard app runs `gates` in order (outermost first) in front of these routes:
 *
 * | route | answer |
 * |---|---|
 * | `GET /ok` | 200, JSON: the quota result the middleware exposed (`null` when none) |
 * | `GET /throws` | the handler throws `new Error('boom')`; the framework's default error answer (500) |
 * | `GET /answers-500` | 500, JSON `{ "error": "failed" }` |
 * | `GET /teapot` | the handler fails with the framework's HTTP error of status 418 |
 * | `GET /slow` | 200, JSON `{ "done": true }` after 300 ms |
 * | `POST /claim` | the quota result as JSON; status 500 when the query has `fail=1`, else 200 |
 * | anything else, any method | 200, text `ok` |
 *
 * No custom error handler: each framework's default error handling answers errors.
 */
export interface MiddlewareHarness<Req> {
  /** Shown in test names: 'Express 5', 'Fastify 4', ... */
  name: string
  request: RequestView<Req>
  /**
   * Create the middleware for `gate` and nothing else: throws for invalid options, or rejects
   * where the framework checks a plugin's options when the app starts (Fastify).
   */
  create(gate: GateSpec<Req>): unknown
  /** Serve the standard app behind `gates` on 127.0.0.1, on a free port. */
  serve(gates: GateSpec<Req>[]): Promise<ServedApp>
}

/** A listening node HTTP server as a `ServedApp`: its loopback URL, and a close that drops kept-alive connections. */
export function servedApp(server: import('node:http').Server): ServedApp {
  const { port } = server.address() as import('node:net').AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
