import { AndromedaError, LoadError, StoreError } from '@andromeda/core'
import type { NextFunction, Request, Response } from 'express'

/** A claim of a voucher the database does not know (thrown by the voucher quota's `limit`). */
export class UnknownVoucherError extends Error {
  constructor(readonly code: string) {
    super(`no voucher "${code}"`)
  }
}

/** An `application/problem+json` answer (RFC 9457). */
export function problem(res: Response, status: number, body: Record<string, unknown>): void {
  res
    .status(status)
    .type('application/problem+json')
    .json({ type: 'about:blank', status, ...body })
}

/** 409: the voucher is sold out, or the user already claimed it. */
export function refused(res: Response, quota: string): void {
  const [title, reason] = quota === 'voucher' ? ['Sold out', 'sold-out'] : ['Already claimed', 'already-claimed']
  problem(res, 409, { title, reason, 'violated-policies': [quota] })
}

/**
 * The Express error handler: 404 for an unknown voucher, 4xx for a bad request, and the
 * quota's own failures (store down or slow, a load or loader lock that failed) a 503 naming
 * the stable code, so a client can tell "try again" from a bug (an untyped 500).
 */
export function errorHandler(report: (error: unknown, where: string) => void) {
  return (error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error)
    const cause = LoadError.isInstance(error) ? error.cause : error
    if (cause instanceof UnknownVoucherError) return problem(res, 404, { title: 'Not Found', detail: cause.message })
    const status = (error as { status?: unknown }).status
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return problem(res, status, { title: 'Bad Request', detail: (error as Error).message })
    }
    report(error, 'request')
    if (!AndromedaError.isInstance(error)) return problem(res, 500, { title: 'Internal Server Error' })
    res.set('Retry-After', '1')
    const { code } = error
    if (!StoreError.isInstance(error))
      return problem(res, 503, { title: 'Service Unavailable', detail: error.message, code })
    problem(res, 503, {
      title: 'Service Unavailable',
      detail: 'quota store unavailable',
      code,
      retryable: error.retryable,
    })
  }
}
