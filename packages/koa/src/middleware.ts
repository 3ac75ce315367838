import { createQuotaGate, errorStatus, type QuotaGateOptions, type QuotaRefusal } from '@andromeda/core/http'
import type { Context, Middleware } from 'koa'

/** Options of `koaQuota`: the shared gate options (see `QuotaGateOptions`) over `ctx`, plus `onExceeded`. */
export interface KoaQuotaOptions<Ctx extends Context = Context> extends QuotaGateOptions<Ctx> {
  /**
   * Called on a 429 after `ctx.status`, `Retry-After` and the RateLimit headers are set. Set
   * `ctx.body` to answer yourself; leave it empty and the default problem+json body is used.
   * If it throws, the error goes to Koa with the RateLimit fields added to `err.headers`.
   */
  onExceeded?: (ctx: Ctx, refusal: QuotaRefusal) => void | Promise<void>
}

/**
 * Koa's default error handling removes every header a middleware set before it writes the error
 * response, then sets `err.headers`: copy the RateLimit fields there so the error response keeps them.
 */
function keepHeadersOnError(ctx: Context, error: unknown, names: readonly string[]): void {
  if (ctx.headerSent || names.length === 0 || typeof error !== 'object' || error === null) return
  const target = error as { headers?: Record<string, unknown> }
  const headers: Record<string, unknown> = { ...(target.headers ?? {}) }
  for (const name of names) {
    const value = ctx.response.get(name) as unknown
    if (value !== undefined && value !== '' && headers[name] === undefined) headers[name] = value
  }
  try {
    target.headers = headers
  } catch {
    // A frozen error keeps its own headers.
  }
}

/**
 * Koa middleware (Koa 3, and 2) that charges a quota per request.
 *
 * - Granted: RateLimit headers (draft-ietf-httpapi-ratelimit-headers, "RateLimit Field" and
 *   "RateLimit-Policy Field") are set, the result is put on `ctx.state.quota`, and the
 *   downstream runs.
 * - Refused: 429 with an `application/problem+json` body (RFC 9457, problem type
 *   `https://iana.org/assignments/http-problem-types#quota-exceeded`), `Retry-After` in whole
 *   seconds when the reset time is known, and the RateLimit headers. It is answered directly,
 *   not thrown, so Koa's error handling cannot strip its headers. The downstream does not run.
 * - Store down: 503 problem+json (`onStoreError: 'deny'`, the default) or pass (`'allow'`);
 *   never a 429, never a wait longer than `timeoutMs`.
 * - Settled exactly once, after the downstream returns or throws and before the response is
 *   written: the units are given back when it threw or the status is >= 400, per `refundWhen`.
 *   A thrown error is re-thrown with the RateLimit fields added to `err.headers`.
 *
 * Errors of the options' own functions and invalid ids or costs are thrown to Koa.
 * Throws `InvalidArgumentError` now for invalid options.
 *
 * @example
 * ```ts
 * import Koa from 'koa'
 * import { createQuota } from '@andromeda/core'
 * import { createMemoryStore } from '@andromeda/memory'
 * import { koaQuota } from '@andromeda/koa'
 *
 * const api = createQuota({ name: 'api', store: createMemoryStore(), limit: 100, period: 'hour' })
 * const app = new Koa()
 * app.use(koaQuota({ quota: api, id: (ctx) => ctx.get('x-api-key') || ctx.ip }))
 * app.use((ctx) => { ctx.body = { remaining: ctx.state.quota.remaining } })
 * app.listen(3000)
 * ```
 */
export function koaQuota<Ctx extends Context = Context>(options: KoaQuotaOptions<Ctx>): Middleware {
  const gate = createQuotaGate<Ctx>(options, ['onExceeded'])
  const { onExceeded } = options

  return async (context, next) => {
    const ctx = context as Ctx
    const decision = await gate.begin(ctx, ctx.req.headers)
    if (decision.action === 'skip') {
      await next()
      return
    }
    const access = gate.headerAccess(
      (name) => ctx.response.get(name),
      (name, value) => ctx.set(name, value),
      () => ctx.headerSent,
    )
    if (decision.action === 'refuse') {
      ctx.status = decision.status
      decision.writeHeaders(access)
      if (decision.refusal && onExceeded) {
        try {
          await onExceeded(ctx, decision.refusal)
        } catch (error) {
          // Koa's error answer drops the headers set so far but for the error's own.
          keepHeadersOnError(ctx, error, decision.headerNames)
          throw error
        }
        if (ctx.body !== undefined && ctx.body !== null) return
      }
      ctx.type = decision.contentType
      ctx.body = decision.body
      return
    }
    decision.writeHeaders(access)
    ctx.state.quota = decision.result
    const aborted = () => !ctx.res.writableFinished && (ctx.req.socket?.destroyed ?? false)
    try {
      await next()
    } catch (error) {
      keepHeadersOnError(ctx, error, decision.headerNames)
      await decision.settle({ status: errorStatus(error), error, aborted: aborted() })
      throw error
    }
    await decision.settle({ status: ctx.status, aborted: aborted() })
  }
}
