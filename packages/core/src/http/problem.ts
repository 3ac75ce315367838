/**
 * Problem details bodies (RFC 9457) for the middleware's own answers.
 */

/** Media type of every body the middleware writes (RFC 9457 section 3). */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json'

/** Problem type for a refused quota, registered by draft-ietf-httpapi-ratelimit-headers. */
export const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded'

/**
 * A problem details object (RFC 9457 section 3.1) with the extension members the middleware
 * adds to a 429: `violated-policies` (the quota names, per the RateLimit draft), `limit`,
 * `remaining` and, when known, `retry-after` (seconds).
 */
export interface ProblemDetails {
  type: string
  title: string
  status: number
  detail?: string
  'violated-policies'?: string[]
  limit?: number
  remaining?: number
  'retry-after'?: number
  [extension: string]: unknown
}

/** Body of a 429: which quota refused, its limit and what remains. */
export function quotaExceededProblem(input: {
  policy: string
  limit: number
  remaining: number
  cost: number
  retryAfterSeconds?: number
}): ProblemDetails {
  const { policy, limit, remaining, cost } = input
  const detail =
    cost > limit
      ? `Quota "${policy}" allows ${limit} unit(s); this request costs ${cost} and can never be granted.`
      : `Quota "${policy}" has ${remaining} of ${limit} unit(s) left; this request costs ${cost}.`
  const problem: ProblemDetails = {
    type: QUOTA_EXCEEDED_TYPE,
    title: 'Quota exceeded',
    status: 429,
    detail,
    'violated-policies': [policy],
    limit,
    remaining,
  }
  if (input.retryAfterSeconds !== undefined) problem['retry-after'] = input.retryAfterSeconds
  return problem
}

/**
 * Body of a 503: the quota store could not be reached and the policy is to deny. With
 * `retryAfterSeconds`, the body says when to come back (`retry-after`, as the header does).
 */
export function storeUnavailableProblem(policy: string, retryAfterSeconds?: number): ProblemDetails {
  const problem: ProblemDetails = {
    type: 'about:blank',
    title: 'Service Unavailable',
    status: 503,
    detail: `The quota "${policy}" cannot be checked right now; try again later.`,
  }
  if (retryAfterSeconds !== undefined) problem['retry-after'] = retryAfterSeconds
  return problem
}

/** Body of a 400: the request's `Idempotency-Key` is not usable. */
export function badIdempotencyKeyProblem(header: string, maxLength: number): ProblemDetails {
  return {
    type: 'about:blank',
    title: 'Bad Request',
    status: 400,
    detail: `The ${header} header must hold 1 to ${maxLength} characters.`,
  }
}
