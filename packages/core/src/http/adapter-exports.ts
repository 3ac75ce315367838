/**
 * What every framework adapter (`@andromeda/express`, `@andromeda/koa`, `@andromeda/hono`,
 * `@andromeda/fastify`) hands its users from the HTTP core, next to its own middleware: the
 * default refund rule and the types its options and `onExceeded` speak in. One list, so the
 * adapters export the same names; an adapter's entry point re-exports it whole.
 *
 * @example
 * ```ts
 * // the entry point of an adapter
 * export * from '@andromeda/core/http/adapter-exports'
 * export { type ExpressQuotaOptions, expressQuota } from './middleware.js'
 * ```
 *
 * @packageDocumentation
 */

export type { QuotaRefusal } from './decisions.js'
export { defaultRefundWhen, type QuotaResolver, type QuotaTarget, type SettleOutcome } from './gate-options.js'
export type { HeaderOptions } from './headers.js'
export type { ProblemDetails } from './problem.js'
