import { createQuotaGate, errorStatus, type QuotaGateOptions, type QuotaRefusal } from '@andromeda/core/http'
import type { NextFunction, Request, RequestHandler, Response } from 'express'

/** Options of `expressQuota`: the shared gate options (see `QuotaGateOptions`) plus `onExceeded`. */
export interface ExpressQuotaOptions<Req extends Request = Request> extends QuotaGateOptions<Req> {
  /**
   * Called on a 429 after the status, `Retry-After` and RateLimit headers are set. Send your
   * own response from it, or return without sending and the default problem+json body is sent.
   * If it throws, the error is forwarded to `next` with the status set to its own `status` /
   * `statusCode` (400 to 599) or 500, never the 429; the RateLimit headers stay.
   */
  onExceeded?: (req: Req, res: Response, refusal: QuotaRefusal) => void | Promise<void>
}

/**
 * Express middleware (Express 5, and 4) that charges a quota per request.
 *
 * - Granted: RateLimit headers (draft-ietf-httpapi-ratelimit-headers, "RateLimit Field" and
 *   "RateLimit-Policy Field") are set, the result is put on `res.locals.quota`, and `next()`
 *   runs the route.
 * - Refused: 429 with an `application/problem+json` body (RFC 9457, problem type
 *   `https://iana.org/assignments/http-problem-types#quota-exceeded`), `Retry-After` in whole
 *   seconds when the reset time is known, and the RateLimit headers. The route does not run.
 * - Store down: 503 problem+json (`onStoreError: 'deny'`, the default) or pass (`'allow'`);
 *   never a 429, never a wait longer than `timeoutMs`.
 * - Settled exactly once, when the response finishes or the connection closes: the units are
 *   given back when the final status is >= 400 (an error Express's error handling answered
 *   included), per `refundWhen`; never for a success; not for a client that merely went away.
 *
 * Errors of the options' own functions (`id`, `cost`, the resolver) and invalid ids or costs
 * are forwarded to `next(error)`. Throws `InvalidArgumentError` now for invalid options.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import { createQuota } from '@andromeda/core'
 * import { createMemoryStore } from '@andromeda/memory'
 * import { expressQuota } from '@andromeda/express'
 *
 * const api = createQuota({ name: 'api', store: createMemoryStore(), limit: 100, period: 'hour' })
 * const app = express()
 * app.use(expressQuota({ quota: api, id: (req) => req.get('x-api-key') ?? req.ip ?? 'anonymous' }))
 * app.get('/', (req, res) => { res.json({ remaining: res.locals.quota.remaining }) })
 * app.listen(3000)
 * ```
 */
export function expressQuota<Req extends Request = Request>(options: ExpressQuotaOptions<Req>): RequestHandler {
  const gate = createQuotaGate<Req>(options, ['onExceeded'])
  const { onExceeded } = options

  async function handle(req: Req, res: Response, next: NextFunction): Promise<void> {
    let decision: Awaited<ReturnType<typeof gate.begin>>
    try {
      decision = await gate.begin(req, req.headers)
    } catch (error) {
      next(error)
      return
    }
    if (decision.action === 'skip') {
      next()
      return
    }
    const access = gate.headerAccess(
      (name) => res.getHeader(name),
      (name, value) => res.setHeader(name, value),
      () => res.headersSent,
    )
    if (decision.action === 'refuse') {
      if (res.headersSent) return
      res.statusCode = decision.status
      decision.writeHeaders(access)
      if (decision.refusal && onExceeded) {
        try {
          await onExceeded(req, res, decision.refusal)
        } catch (error) {
          // The 429 set above is not this answer: Express's error handler keeps a status >= 400.
          if (!res.headersSent) res.statusCode = errorStatus(error)
          next(error)
          return
        }
        if (res.headersSent || res.writableEnded) return
      }
      res.setHeader('Content-Type', decision.contentType)
      res.end(decision.body)
      return
    }
    decision.writeHeaders(access)
    res.locals.quota = decision.result
    const settle = (aborted: boolean) => {
      void decision.settle({ status: res.statusCode, aborted })
    }
    // 'finish': the response went out whole; 'close' without it: the connection dropped first.
    res.once('finish', () => settle(false))
    res.once('close', () => settle(!res.writableFinished))
    if (res.destroyed) settle(true)
    next()
  }

  return (req, res, next) => {
    void handle(req as Req, res, next)
  }
}
