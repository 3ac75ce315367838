/**
 * HTTP logic shared by the framework adapters (`@andromeda/express`, `@andromeda/koa`,
 * `@andromeda/hono`, `@andromeda/fastify`): the quota gate (consume, 429 / 503 decisions,
 * settle-once refunds), RateLimit header fields (draft-ietf-httpapi-ratelimit-headers) and
 * problem details bodies (RFC 9457). What the adapters re-export to their users is
 * `@andromeda/core/http/adapter-exports`, part of this entry too.
 *
 * @packageDocumentation
 */

export * from './adapter-exports.js'
export { errorStatus } from './error-status.js'
export {
  createQuotaGate,
  type GateDecision,
  QUOTA_GATE_OPTION_KEYS,
  type QuotaGate,
  type QuotaGateOptions,
} from './gate.js'
export { type HeaderAccess, secondsUntil } from './headers.js'
export {
  badIdempotencyKeyProblem,
  PROBLEM_CONTENT_TYPE,
  QUOTA_EXCEEDED_TYPE,
  quotaExceededProblem,
  storeUnavailableProblem,
} from './problem.js'
