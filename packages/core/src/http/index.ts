/**
 * HTTP logic shared by `@andromeda/express` and `@andromeda/koa`: the quota gate (consume,
 * 429 / 503 decisions, settle-once refunds), RateLimit header fields
 * (draft-ietf-httpapi-ratelimit-headers) and problem details bodies (RFC 9457).
 *
 * @packageDocumentation
 */
export {
  createQuotaGate,
  defaultRefundWhen,
  type GateDecision,
  type QuotaGate,
  type QuotaGateOptions,
  type QuotaResolver,
  QUOTA_GATE_OPTION_KEYS,
  type QuotaTarget,
  type SettleOutcome,
} from './gate.js'
export {
  appendListItem,
  formatPolicyItem,
  formatRateLimitItem,
  type HeaderAccess,
  type HeaderOptions,
  type RateLimitInfo,
  resolveHeaderOptions,
  secondsUntil,
  sfString,
  writeRateLimitHeaders,
} from './headers.js'
export {
  badIdempotencyKeyProblem,
  PROBLEM_CONTENT_TYPE,
  type ProblemDetails,
  QUOTA_EXCEEDED_TYPE,
  quotaExceededProblem,
  storeUnavailableProblem,
} from './problem.js'
