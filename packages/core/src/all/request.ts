import { createHash } from 'node:crypto'
import { InvalidArgumentError, StoreError } from '../errors.js'
import { idempotencyKey } from '../keys.js'
import type { Plan } from '../plan.js'
import type { QuotaEngine } from '../quota.js'
import { refusedResult, unlimitedResult } from '../result.js'
import type { ConsumeAllItem, ConsumeAllResult, ReservationAll } from '../types.js'
import { checkCallOptions, checkIdempotencyKey } from '../validate.js'

/**
 * What the multi-quota calls (`consumeAll`, `reserveAll`, `transactAll`) share: resolving the
 * items into one request, and the handles and store-fault answers of both paths (one atomic
 * apply, `./atomic.ts`; a saga on holds, `./saga.ts`).
 */

/** Options of `consumeAll`. */
export interface ConsumeAllOptions {
  /** Makes the whole call safe to retry (see `CallOptions.idempotencyKey`). */
  idempotencyKey?: string
  signal?: AbortSignal
}

/** Options of `reserveAll`. */
export interface ReserveAllOptions extends ConsumeAllOptions {
  /** How long the units are held unless committed or released (ms). Default: the first item's quota's `holdMs`. */
  holdMs?: number
}

/** Options of `transactAll`. */
export interface TransactAllOptions extends ReserveAllOptions {
  /** When true, units stay consumed even if `fn` throws (the work cannot be undone). */
  irreversible?: boolean
}

export const ALL_OPTION_KEYS = ['idempotencyKey', 'signal']
export const RESERVE_ALL_OPTION_KEYS = [...ALL_OPTION_KEYS, 'holdMs']
export const TRANSACT_ALL_OPTION_KEYS = [...RESERVE_ALL_OPTION_KEYS, 'irreversible']

/** One item, resolved: its quota's engine and its plan. */
export interface Item {
  engine: QuotaEngine<any>
  plan: Plan<any>
}

/** What a multi-quota call resolved: its items, the counted ones, and whether one atomic apply can cover them. */
export interface Request {
  items: Item[]
  counted: number[]
  results: ConsumeAllResult['results']
  /** The record of an atomic call (in the first counted item's group), when there is a key. */
  recordKey: string | undefined
  together: boolean
  /** The request's key and digest, from which a saga's per-item keys are made. */
  sagaKey: string | undefined
}

/** The engine behind a quota made by `createQuota` (of this copy of core). */
function engineOf(quota: unknown, index: number): QuotaEngine<any> {
  const engine = quota as Partial<QuotaEngine<any>> | null
  if (typeof engine?.plan !== 'function' || typeof engine.consumePlan !== 'function' || engine.planner === undefined) {
    throw new InvalidArgumentError(
      `items[${index}].quota`,
      'must be a quota made by createQuota of this copy of @andromeda/core',
    )
  }
  return engine as QuotaEngine<any>
}

async function planItems(items: readonly ConsumeAllItem[]): Promise<Item[]> {
  if (!Array.isArray(items) || items.length === 0) throw new InvalidArgumentError('items', 'must be a non-empty array')
  return Promise.all(
    items.map(async (item, index) => {
      const engine = engineOf(item?.quota, index)
      try {
        // Only a missing cost defaults to 1: null is a bad cost here as in consume().
        return { engine, plan: await engine.plan(item.id, item.cost === undefined ? 1 : item.cost, item.data) }
      } catch (error) {
        if (!InvalidArgumentError.isInstance(error)) throw error
        throw new InvalidArgumentError(`items[${index}].${error.argument}`, error.detail)
      }
    }),
  )
}

/** A short digest of which counters a multi-quota request charges, and how much. */
function requestDigest(items: Item[]): string {
  const hash = createHash('sha256')
  // The (quota, id) groups and window kinds, not the window's counters: a retry of the same
  // request after a window changed is the same request.
  for (const { engine, plan } of items)
    hash.update(`${engine.planner.groupOf(plan.id)}\u0000${engine.planner.windowKind}\u0000${plan.cost}\u0000`)
  return hash.digest('base64url').slice(0, 16)
}

/** Check the options, plan every item, and find whether one atomic apply can cover the counted ones. */
export async function resolveRequest(
  items: readonly ConsumeAllItem[],
  options: ConsumeAllOptions,
  operation: 'all' | 'reserve-all',
): Promise<Request> {
  checkCallOptions(options, operation === 'all' ? ALL_OPTION_KEYS : RESERVE_ALL_OPTION_KEYS)
  const idempotency = checkIdempotencyKey(options.idempotencyKey)
  const resolved = await planItems(items)
  const counted = resolved.flatMap(({ plan }, index) => (plan.limit === null ? [] : [index]))
  const results = resolved.map(() => unlimitedResult())
  const countedItems = counted.map((i) => resolved[i]!)
  const first = countedItems[0]
  const digest = idempotency && requestDigest(countedItems)
  const recordKey =
    first &&
    idempotency &&
    idempotencyKey(
      first.engine.planner.groupOf(first.plan.id),
      operation === 'all' ? 'all' : 'reserve',
      idempotency,
      digest,
      first.engine.planner.windowKind,
    )
  const keys = countedItems.map(({ plan }) => plan.key)
  const together =
    first !== undefined &&
    countedItems.every(({ engine }) => engine.store === first.engine.store) &&
    first.engine.store.capabilities.canApplyTogether(recordKey ? [...keys, recordKey] : keys)
  return { items: resolved, counted, results, recordKey, together, sagaKey: idempotency && `${idempotency}#${digest}` }
}

/** A multi-quota handle; the first commit or release decides, later calls answer the same. */
export function handle(
  result: ConsumeAllResult,
  expiresAt: number | undefined,
  empty: boolean,
  settle: (commit: boolean) => Promise<void>,
): ReservationAll {
  if (empty) return nothingHeld(result)
  let settled: Promise<ConsumeAllResult> | undefined
  const once = (commit: boolean) => {
    settled ??= settle(commit).then(() => result)
    return settled
  }
  return { ...result, expiresAt, commit: () => once(true), release: () => once(false) }
}

/** The plain result of a handle. */
export function resultOf(held: ReservationAll): ConsumeAllResult {
  const { allowed, results, refused, replayed } = held
  return { allowed, results, ...(refused ? { refused } : {}), ...(replayed ? { replayed } : {}) }
}

/** A handle that holds nothing: settling it changes nothing. */
export function nothingHeld(result: ConsumeAllResult): ReservationAll {
  return { ...result, expiresAt: undefined, commit: async () => result, release: async () => result }
}

/**
 * A store fault after nothing stays held: reject, or answer per `onStoreError` when every
 * counted quota agrees on 'allow' or one says 'deny'.
 */
export function storeFault(request: Request, error: unknown): ConsumeAllResult {
  if (!StoreError.isInstance(error)) throw error
  const { items, counted, results } = request
  const policies = counted.map((i) => items[i]!.engine.config.onStoreError)
  if (policies.includes('throw')) throw error
  const index = policies.indexOf('deny')
  for (const i of counted) results[i] = items[i]!.engine.onStoreFault(items[i]!.plan, error)!
  if (index === -1) return { allowed: true, results }
  const refusedIndex = counted[index]!
  for (const i of counted) results[i] = refusedResult('store', 0, results[i]!.limit)
  return {
    allowed: false,
    results,
    refused: { index: refusedIndex, quota: items[refusedIndex]!.engine.name, reason: 'store' },
  }
}
