import { InvalidArgumentError, type QuotaResult } from '@andromeda/core'
import { createQuotaGate, type QuotaGateOptions, type QuotaRefusal } from '@andromeda/core/http'
import type { Context, MiddlewareHandler } from 'hono'

/**
 * The context variable the middleware sets: `c.get('quota')` is the result of a granted request
 * (undefined when the request was skipped). Declare it on your app: `new Hono<{ Variables: QuotaVariables }>()`.
 */
export type QuotaVariables = { quota: QuotaResult | undefined }

/** Options of `honoQuota`: the shared gate options (see `QuotaGateOptions`) over the Hono `Context`, plus `onExceeded`. */
export interface HonoQuotaOptions<C extends Context = Context> extends QuotaGateOptions<C> {
  /**
   * Called on a 429 after the status, `Retry-After` and RateLimit headers are set on `c`.
   * Return a `Response` (`c.json(...)`) to answer yourself; return nothing and the default
   * problem+json body is sent. If it throws, Hono's error handling answers (`app.onError`; by
   * default a 500), never the 429.
   */
  onExceeded?: (c: C, refusal: QuotaRefusal) => Response | undefined | Promise<Response | undefined>
}

/**
 * Hono 4 middleware that charges a quota per request, on the same HTTP core as
 * `@andromeda/express`, `@andromeda/koa` and `@andromeda/fastify`.
 *
 * - Granted: RateLimit headers (draft-ietf-httpapi-ratelimit-headers, "RateLimit Field" and
 *   "RateLimit-Policy Field") are set, the result is `c.get('quota')`, and the downstream runs.
 * - Refused: 429 with an `application/problem+json` body (RFC 9457, problem type
 *   `https://iana.org/assignments/http-problem-types#quota-exceeded`), `Retry-After` in whole
 *   seconds when the reset time is known, and the RateLimit headers. The downstream does not run.
 * - Store down: 503 problem+json with `Retry-After` (`onStoreError: 'deny'`, the default) or
 *   pass (`'allow'`); never a 429, never a wait longer than `timeoutMs`.
 * - Settled exactly once, after the downstream returns and before the response goes out: the
 *   units are given back when a handler threw (`c.error`) or the status is >= 400, per
 *   `refundWhen`; never for a success; not for a client that merely went away (the request's
 *   `signal` aborted).
 *
 * Errors of the options' own functions and invalid ids or costs are thrown to Hono's error
 * handling. Throws `InvalidArgumentError` now for invalid options.
 *
 * @example
 * ```ts
 * import { Hono } from 'hono'
 * import { serve } from '@hono/node-server'
 * import { createQuota } from '@andromeda/core'
 * import { createMemoryStore } from '@andromeda/memory'
 * import { honoQuota, type QuotaVariables } from '@andromeda/hono'
 *
 * const api = createQuota({ name: 'api', store: createMemoryStore(), limit: 100, period: 'hour' })
 * const app = new Hono<{ Variables: QuotaVariables }>()
 * app.use(honoQuota({ quota: api, id: (c) => c.req.header('x-api-key') ?? 'anonymous' }))
 * app.get('/', (c) => c.json({ remaining: c.get('quota')?.remaining }))
 * serve({ fetch: app.fetch, port: 3000 })
 * ```
 */
export function honoQuota<C extends Context = Context>(
  options: HonoQuotaOptions<C>,
): MiddlewareHandler<{ Variables: QuotaVariables }> {
  const gate = createQuotaGate<C>(options, ['onExceeded'])
  const { onExceeded } = options

  return async (context, next) => {
    const c = context as unknown as C
    const decision = await gate.begin(c, c.req.header())
    if (decision.action === 'skip') {
      await next()
      return
    }
    // Read the response as it stands through `c.res` (which also makes Hono keep these headers
    // when a handler or the error handler replaces the response), write through `c.header`.
    // Nothing is sent before the whole chain returned.
    const access = gate.headerAccess(
      (name) => c.res.headers.get(name),
      (name, value) => c.header(name, value),
      () => false,
    )
    if (decision.action === 'refuse') {
      decision.writeHeaders(access)
      if (decision.refusal && onExceeded) {
        c.status(429)
        const answer: unknown = await onExceeded(c, decision.refusal)
        if (answer instanceof Response) return answer
        if (answer !== undefined && answer !== null) {
          throw new InvalidArgumentError(
            'onExceeded',
            `must return a Response, undefined or a promise of one, got ${typeof answer}`,
          )
        }
      }
      return c.body(decision.body, decision.status, { 'Content-Type': decision.contentType })
    }
    decision.writeHeaders(access)
    context.set('quota', decision.result)
    await next()
    const { error } = c
    const aborted = c.req.raw.signal.aborted
    await decision.settle(
      error === undefined ? { status: c.res.status, aborted } : { status: c.res.status, error, aborted },
    )
  }
}
