import { StoreError } from '../errors.js'
import { type Charge, chargeBounded, counted } from './charge.js'
import { badIdempotencyKey, degradedCharge, type GateDecision, grant, overLimit, storeDown } from './decisions.js'
import { type GateSettings, type QuotaGateOptions, resolveGateOptions } from './gate-options.js'
import { type HeaderAccess, headerAccessOf } from './headers.js'
import { idempotencyKeyOf, resolveCost, resolveTarget, shouldSkip } from './request-input.js'

export type { GateDecision } from './decisions.js'
export {
  defaultRefundWhen,
  QUOTA_GATE_OPTION_KEYS,
  type QuotaGateOptions,
  type QuotaResolver,
  type QuotaTarget,
  type SettleOutcome,
} from './gate-options.js'

/** Decides each request: `begin` consumes and returns what to answer. Adapters are thin wrappers. */
export interface QuotaGate<Req> {
  begin(req: Req, requestHeaders: Readonly<Record<string, string | string[] | undefined>>): Promise<GateDecision>
  /**
   * The `HeaderAccess` a decision writes its headers through, over the framework's own
   * functions for one response: `read` may answer what the framework holds (a number, a list;
   * `undefined`, `null` or `''` for none), `get` gives it as text, a list joined with `, `.
   *
   * @example
   * ```ts
   * const access = gate.headerAccess(
   *   (name) => res.getHeader(name),
   *   (name, value) => res.setHeader(name, value),
   *   () => res.headersSent,
   * )
   * decision.writeHeaders(access)
   * ```
   */
  headerAccess(
    read: (name: string) => unknown,
    write: (name: string, value: string) => void,
    sent: () => boolean,
  ): HeaderAccess
}

/**
 * Build the framework-neutral core of the quota middleware. `expressQuota` and `koaQuota`
 * wrap it; use it to write an adapter for another framework.
 *
 * Options are validated now and throw `InvalidArgumentError` naming the option; keys that are
 * neither `QuotaGateOptions` nor one of `adapterKeys` (the adapter's own options, e.g.
 * `onExceeded`) are refused, naming the key and the nearest known one. `timeoutMs` is a timer:
 * at most 2^31 - 1 ms. The options' functions may be async; a wrong-typed answer (`skip` not a
 * boolean, `id` not a string, `cost` not a count, a resolver's answer not `{ quota, id }`) is
 * an `InvalidArgumentError` naming the option, forwarded like any error of the request.
 *
 * @example
 * ```ts
 * const gate = createQuotaGate({ quota: api, id: (req: IncomingMessage) => String(req.headers['x-api-key']) })
 * const decision = await gate.begin(req, req.headers)
 * ```
 */
export function createQuotaGate<Req>(
  options: QuotaGateOptions<Req>,
  adapterKeys: readonly string[] = [],
): QuotaGate<Req> {
  const settings = resolveGateOptions(options, adapterKeys)
  return { begin: (req, requestHeaders) => begin(settings, req, requestHeaders), headerAccess: headerAccessOf }
}

/** One request: skip?, which quota and id, what it costs, its idempotency key, then charge and answer. */
async function begin<Req>(
  settings: GateSettings<Req>,
  req: Req,
  requestHeaders: Readonly<Record<string, string | string[] | undefined>>,
): Promise<GateDecision> {
  if (await shouldSkip(settings, req)) return { action: 'skip' }
  const target = await resolveTarget(settings, req)
  if (!target) return { action: 'skip' }
  const cost = await resolveCost(settings, req, target)
  const policy = target.quota.name
  const key = idempotencyKeyOf(settings, requestHeaders)
  if (key === null) return badIdempotencyKey(settings.idempotencyHeader!)
  let charged: Charge
  try {
    charged = await chargeBounded(settings, target, cost, key)
  } catch (error) {
    if (!StoreError.isInstance(error)) throw error
    return settings.onStoreError === 'allow'
      ? grant(settings, degradedCharge(cost), req, policy)
      : storeDown(settings, policy)
  }
  try {
    return answer(settings, charged, req, policy)
  } catch (error) {
    // No decision answers this request (its quota's clock failed, say): what it counted goes back.
    if (counted(charged)) void charged.settle(true)
    throw error
  }
}

/** The decision a finished charge makes: a grant, a 503 for a store fault, else a 429. */
function answer<Req>(settings: GateSettings<Req>, charged: Charge, req: Req, policy: string): GateDecision {
  const { result } = charged
  if (result.allowed) return grant(settings, charged, req, policy)
  if (result.reason === 'store') return storeDown(settings, policy, result)
  return overLimit(settings, charged, policy)
}
