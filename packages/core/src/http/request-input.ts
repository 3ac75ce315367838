import { InvalidArgumentError } from '../errors.js'
import type { Quota } from '../types.js'
import { MAX_IDEMPOTENCY_KEY_LENGTH } from '../validate.js'
import type { GateSettings, QuotaTarget } from './gate-options.js'

/**
 * What the gate reads from one request through the user's functions (`skip`, the quota
 * resolver or `id`, `cost`) and its headers (`Idempotency-Key`), each answer checked: a
 * wrong-typed one is an `InvalidArgumentError` naming the option.
 */

export function isQuota(value: unknown): value is Quota<any> {
  return typeof value === 'object' && value !== null && typeof (value as Quota).reserve === 'function'
}

export function checkCost(value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidArgumentError('cost', `must be a safe integer >= 0, got ${describe(value)}`)
  }
  return value
}

/** A value as an error message shows it: a promise is named as such (a sync option given an async function). */
export function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof (value as PromiseLike<unknown> | undefined)?.then === 'function') return 'a promise'
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`
}

/** The id a request is counted under: a string (the quota checks the rest). */
function checkId(value: unknown, option = 'id'): string {
  if (typeof value !== 'string') throw new InvalidArgumentError(option, `must give a string id, got ${describe(value)}`)
  return value
}

/** True when `skip` says the request passes uncounted. */
export async function shouldSkip<Req>(settings: GateSettings<Req>, req: Req): Promise<boolean> {
  if (!settings.skip) return false
  const answer: unknown = await settings.skip(req)
  if (typeof answer !== 'boolean')
    throw new InvalidArgumentError('skip', `must return a boolean (or a promise of one), got ${describe(answer)}`)
  return answer
}

/** The quota and id a request is counted under; undefined when the resolver skips it. */
export async function resolveTarget<Req>(settings: GateSettings<Req>, req: Req): Promise<QuotaTarget<any> | undefined> {
  const { quota } = settings
  if (isQuota(quota)) return { quota, id: checkId(await settings.id!(req)) }
  const target: unknown = await quota(req)
  if (target === null || target === undefined || target === false) return undefined
  if (typeof target !== 'object' || !isQuota((target as QuotaTarget).quota)) {
    throw new InvalidArgumentError(
      'quota',
      `the resolver must return { quota, id } with a quota made by createQuota (or null to skip), got ${describe(target)}`,
    )
  }
  checkId((target as QuotaTarget).id, 'quota')
  return target as QuotaTarget<any>
}

/** What the request costs: the resolver's `cost`, else the `cost` option, else 1. */
export async function resolveCost<Req>(
  settings: GateSettings<Req>,
  req: Req,
  target: QuotaTarget<any>,
): Promise<number> {
  if (target.cost !== undefined) return checkCost(target.cost)
  if (typeof settings.cost === 'function') return checkCost(await settings.cost(req))
  return settings.cost ?? 1
}

/**
 * The request's idempotency key: undefined when idempotency is off or the header is absent,
 * `null` when the header is there but unusable (empty, or longer than the engine accepts).
 */
export function idempotencyKeyOf<Req>(
  settings: GateSettings<Req>,
  requestHeaders: Readonly<Record<string, string | string[] | undefined>>,
): string | null | undefined {
  if (settings.idempotencyHeader === undefined) return undefined
  const raw = headerValue(requestHeaders, settings.idempotencyHeader)
  return raw === undefined ? undefined : (parseIdempotencyKey(raw) ?? null)
}

function headerValue(
  headers: Readonly<Record<string, string | string[] | undefined>>,
  name: string,
): string | undefined {
  const raw = headers[name.toLowerCase()]
  return Array.isArray(raw) ? raw[0] : raw
}

/** The `Idempotency-Key` field is a Structured Field String; bare values are accepted too. */
function parseIdempotencyKey(raw: string): string | undefined {
  let value = raw.trim()
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"'))
    value = value.slice(1, -1).replace(/\\(["\\])/g, '$1')
  return value.length > 0 && value.length <= MAX_IDEMPOTENCY_KEY_LENGTH ? value : undefined
}
