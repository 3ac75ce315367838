/**
 * HTTP logic shared by `@andromeda/express` and `@andromeda/koa`: the quota gate (consume,
 * 429 / 503 decisions, settle-once refunds), RateLimit header fields
 * (draft-ietf-httpapi-ratelimit-headers) and problem details bodies (RFC 9457).
 *
 * @packageDocumentation
 */

export type { QuotaRefusal } from './decisions.js'
export {
  createQuotaGate,
  defaultRefundWhen,
  type GateDecision,
  QUOTA_GATE_OPTION_KEYS,
  type QuotaGate,
  type QuotaGateOptions,
  type QuotaResolver,
  type QuotaTarget,
  type SettleOutcome,
} from './gate.js'
export { type HeaderAccess, type HeaderOptions, secondsUntil } from './headers.js'
export {
  badIdempotencyKeyProblem,
  PROBLEM_CONTENT_TYPE,
  type ProblemDetails,
  QUOTA_EXCEEDED_TYPE,
  quotaExceededProblem,
  storeUnavailableProblem,
} from './problem.js'
