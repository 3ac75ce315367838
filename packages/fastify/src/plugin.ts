import { checkOptionKeys, InvalidArgumentError, type QuotaResult } from '@andromeda/core'
import {
  createQuotaGate,
  errorStatus,
  type GateDecision,
  QUOTA_GATE_OPTION_KEYS,
  type QuotaGateOptions,
  type QuotaRefusal,
} from '@andromeda/core/http'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

/** A hook the plugin runs (or `fastify.quotaHook()` returns) for one quota. */
export type QuotaHook = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>

/**
 * Options of `fastifyQuota`: the shared gate options (see `QuotaGateOptions`) over the Fastify
 * request, plus `onExceeded`, `hook` and `global`.
 */
export interface FastifyQuotaOptions extends Omit<QuotaGateOptions<FastifyRequest>, 'quota'> {
  /**
   * The quota every request consumes from (then `id` is required), or a resolver returning
   * `{ quota, id, cost?, data? }` per request. Required unless `global` is false.
   */
  quota?: QuotaGateOptions<FastifyRequest>['quota']
  /**
   * Called on a 429 after the status, `Retry-After` and RateLimit headers are set. Send your
   * own answer from it (`reply.send(...)`), or return without sending and the default
   * problem+json body is sent. If it throws, Fastify's error handling answers with the
   * error's own `status` / `statusCode` (400 to 599) or 500, never the 429.
   */
  onExceeded?: (request: FastifyRequest, reply: FastifyReply, refusal: QuotaRefusal) => void | Promise<void>
  /**
   * The lifecycle hook that charges: `'onRequest'` (default: before the body is parsed, so a
   * refused request costs no parsing) or `'preHandler'` (after: `id` and `cost` may read
   * `request.body`).
   */
  hook?: 'onRequest' | 'preHandler'
  /**
   * `true` (default): charge every route of the scope the plugin is registered in, except
   * routes with `config: { quota: false }`. `false`: charge nothing by itself; routes opt in
   * with `fastify.quotaHook(options)`.
   */
  global?: boolean
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The result of the last quota this request was charged, or null when none. */
    quota: QuotaResult | null
  }
  interface FastifyInstance {
    /**
     * A hook charging a quota, for one route's `onRequest` or `preHandler`: the options the
     * plugin was registered with, overridden by `options`.
     */
    quotaHook(options?: FastifyQuotaOptions): QuotaHook
  }
  interface FastifyContextConfig {
    /** `false`: the plugin's global hook does not charge this route. */
    quota?: false
  }
}

/** Granted decisions of one request, settled once when it ends, and the error it ended with. */
interface Pending {
  reply: FastifyReply
  decisions: Extract<GateDecision, { action: 'grant' }>[]
  error?: unknown
}

const pending = new WeakMap<FastifyRequest, Pending>()

function settleAll(request: FastifyRequest, aborted: boolean): void {
  const entry = pending.get(request)
  if (!entry) return
  pending.delete(request)
  const status = entry.reply.statusCode
  const outcome = entry.error === undefined ? { status, aborted } : { status, aborted, error: entry.error }
  for (const decision of entry.decisions) void decision.settle(outcome)
}

/**
 * The plugin's own options, and what Fastify's `register` may pass along with them (the
 * plugin's encapsulation options): every other key is refused.
 */
const FASTIFY_OPTION_KEYS = ['onExceeded', 'hook', 'global', 'prefix', 'logLevel', 'logSerializers']

/** Build the hook that charges one quota per request. Validates the options now. */
function createHook(options: FastifyQuotaOptions): QuotaHook {
  const gate = createQuotaGate<FastifyRequest>(options as QuotaGateOptions<FastifyRequest>, FASTIFY_OPTION_KEYS)
  const { onExceeded } = options
  return async function andromedaQuota(request, reply) {
    const decision = await gate.begin(request, request.headers)
    if (decision.action === 'skip') return
    const access = gate.headerAccess(
      (name) => reply.getHeader(name),
      (name, value) => reply.header(name, value),
      () => reply.sent || reply.raw.headersSent,
    )
    if (decision.action === 'refuse') {
      reply.code(decision.status)
      decision.writeHeaders(access)
      if (decision.refusal && onExceeded) {
        try {
          await onExceeded(request, reply, decision.refusal)
        } catch (error) {
          // The 429 set above is not this answer: Fastify's error handler keeps a status it finds set.
          if (!reply.sent) reply.code(errorStatus(error))
          throw error
        }
        if (reply.sent) return reply
      }
      // Sent as bytes: Fastify appends `; charset=utf-8` to a JSON type sent as a string, and the
      // content type is then not the one the other adapters send (RFC 9457 defines no charset).
      return reply.type(decision.contentType).send(Buffer.from(decision.body))
    }
    decision.writeHeaders(access)
    request.quota = decision.result
    const entry = pending.get(request)
    if (entry) entry.decisions.push(decision)
    else pending.set(request, { reply, decisions: [decision] })
  }
}

async function plugin(fastify: FastifyInstance, options: FastifyQuotaOptions): Promise<void> {
  checkOptionKeys('', options, [...QUOTA_GATE_OPTION_KEYS, ...FASTIFY_OPTION_KEYS])
  const { global = true, hook = 'onRequest' } = options
  if (hook !== 'onRequest' && hook !== 'preHandler')
    throw new InvalidArgumentError('hook', "must be 'onRequest' or 'preHandler'")
  // Created now so bad options fail the registration, not the first request.
  const charge = global ? createHook(options) : undefined

  // Once per scope (a child scope inherits the parent's): the decorations and the hooks that
  // settle every charge of a request when it ends.
  if (!fastify.hasDecorator('quotaHook')) {
    fastify.decorateRequest('quota', null)
    fastify.decorate('quotaHook', (overrides: FastifyQuotaOptions = {}) => createHook({ ...options, ...overrides }))
    fastify.addHook('onError', async (request, _reply, error) => {
      const entry = pending.get(request)
      if (entry) entry.error = error
    })
    // The response went out whole: the refund rule sees its final status.
    fastify.addHook('onResponse', async (request) => {
      settleAll(request, false)
    })
    // The client went away first: settled now, as aborted (not refunded by default: the work may be done).
    fastify.addHook('onRequestAbort', async (request) => {
      settleAll(request, true)
    })
  }
  if (charge) {
    fastify.addHook(hook, async (request, reply) => {
      if (request.routeOptions.config?.quota === false) return
      return charge(request, reply)
    })
  }
}

/**
 * Fastify plugin (Fastify 5, and 4) that charges a quota per request, on the same HTTP core
 * as `@andromeda/express` and `@andromeda/koa`.
 *
 * - Registered with `fastify.register(fastifyQuota, options)`, it charges every route of the
 *   scope it is registered in (wrapped with fastify-plugin: the scope of the `register` call;
 *   register it inside your own plugin to limit it to that plugin's routes). A route with
 *   `config: { quota: false }` is not charged. With `global: false` it charges nothing by
 *   itself and routes opt in with `{ onRequest: fastify.quotaHook({ quota, id }) }`.
 * - Granted: RateLimit headers (draft-ietf-httpapi-ratelimit-headers) are set and the result
 *   is on `request.quota`.
 * - Refused: 429 with an `application/problem+json` body (RFC 9457, problem type
 *   `https://iana.org/assignments/http-problem-types#quota-exceeded`), `Retry-After` in whole
 *   seconds when the reset time is known, and the RateLimit headers. The handler does not run.
 * - Store down: 503 problem+json with `Retry-After` (`onStoreError: 'deny'`, the default) or
 *   pass (`'allow'`); never a 429, never a wait longer than `timeoutMs`.
 * - Settled exactly once, in the `onResponse` hook (or `onRequestAbort`, when the client went
 *   away first): the units are given back when the final status is >= 400 or an error reached
 *   Fastify's error handling, per `refundWhen`; never for a success; not for a client that
 *   merely went away.
 *
 * Errors of the options' own functions (`id`, `cost`, the resolver) and invalid ids or costs
 * go to Fastify's error handling. Registration fails with `InvalidArgumentError` for invalid
 * options.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify'
 * import { createQuota } from '@andromeda/core'
 * import { createMemoryStore } from '@andromeda/memory'
 * import { fastifyQuota } from '@andromeda/fastify'
 *
 * const api = createQuota({ name: 'api', store: createMemoryStore(), limit: 100, period: 'hour' })
 * const app = Fastify()
 * await app.register(fastifyQuota, { quota: api, id: (request) => request.headers['x-api-key']?.toString() ?? request.ip })
 * app.get('/', async (request) => ({ remaining: request.quota?.remaining }))
 * await app.listen({ port: 3000 })
 * ```
 */
export const fastifyQuota = fp(plugin, { fastify: '4.x || 5.x', name: '@andromeda/fastify' })
