import { atomically, atomicHolds } from './all/atomic.js'
import {
  type ConsumeAllOptions,
  nothingHeld,
  type ReserveAllOptions,
  resolveRequest,
  resultOf,
  TRANSACT_ALL_OPTION_KEYS,
  type TransactAllOptions,
} from './all/request.js'
import { saga } from './all/saga.js'
import { CompensationError, QuotaExceededError } from './errors.js'
import type { ConsumeAllItem, ConsumeAllResult, ReservationAll } from './types.js'
import { checkCallOptions, checkDurationMs, checkFunction } from './validate.js'

export type { ConsumeAllOptions, ReserveAllOptions, TransactAllOptions } from './all/request.js'

/**
 * Consume from several quotas, all or nothing: either every item is granted or none stays
 * consumed (the Go original's multi-quota, made atomic).
 *
 * When every counted item lives in one store that can apply their keys together (the memory
 * store always; Redis when the keys share a slot), it is one atomic `apply`. Otherwise it is a
 * saga on holds: items are reserved in order and, once all are held, committed; on a refusal
 * or a store fault the holds are released (`onCompensate` fires for each), and should this
 * process die meanwhile they come back by themselves after `holdMs`.
 *
 * @returns `{ allowed, results, refused? }`; `refused.index` is the first refused item, and the
 *   other counted items say `'rolled-back'` or `'not-tried'`.
 * @throws InvalidArgumentError for bad items (named `items[i].cost` etc.) before any change.
 * @throws StoreError when the store fails (after releasing what was held), unless every
 *   quota's `onStoreError` says otherwise; CompensationError when that release failed too.
 *
 * @example
 * ```ts
 * const { allowed, refused } = await consumeAll([
 *   { quota: vouchers, id: 'SUMMER24' },
 *   { quota: perUser, id: `${userId}:SUMMER24` },
 * ])
 * if (!allowed) console.log('refused by', refused?.quota)
 * ```
 */
export async function consumeAll(
  items: readonly ConsumeAllItem[],
  options: ConsumeAllOptions = {},
): Promise<ConsumeAllResult> {
  const request = await resolveRequest(items, options, 'all')
  if (request.counted.length === 0) return { allowed: true, results: request.results }
  if (request.together) return atomically(request, options.signal)
  const held = await saga(request, options.signal, undefined)
  if (held.allowed) await held.commit()
  return resultOf(held)
}

/**
 * Reserve from several quotas, all or nothing, with one handle: `commit()` keeps every unit,
 * `release()` gives them all back, and holds neither committed nor released come back by
 * themselves after `holdMs`. One atomic `apply` when the store can cover every key, else
 * reserves in order (a refusal releases what was held).
 *
 * @throws as `consumeAll`.
 *
 * @example
 * ```ts
 * const held = await reserveAll([{ quota: perUser, id: `${user}:${code}` }, { quota: vouchers, id: code }], { holdMs: 30_000 })
 * if (!held.allowed) return refuse(held.refused)
 * try { await db.insertClaim(code, user) } catch (error) { await held.release(); throw error }
 * await held.commit()
 * ```
 */
export async function reserveAll(
  items: readonly ConsumeAllItem[],
  options: ReserveAllOptions = {},
): Promise<ReservationAll> {
  const holdMs = options.holdMs === undefined ? undefined : checkDurationMs('holdMs', options.holdMs)
  const request = await resolveRequest(items, options, 'reserve-all')
  if (request.counted.length === 0) return nothingHeld({ allowed: true, results: request.results })
  const held = request.together
    ? await atomicHolds(request, options.signal, holdMs)
    : await saga(request, options.signal, holdMs)
  return held
}

/**
 * `reserveAll`, then run `fn`, then commit; every unit goes back if `fn` throws (unless
 * `irreversible`): the multi-quota form of `transact`, on holds, so a process that dies while
 * `fn` runs gives the units back after `holdMs`.
 *
 * @returns what `fn` returns.
 * @throws QuotaExceededError when an item was refused (`fn` does not run); `.result` is that
 *   item's result. `fn`'s own error after releasing the units, or CompensationError when the
 *   release failed too. InvalidArgumentError / StoreError as `consumeAll`.
 *
 * @example
 * ```ts
 * const claim = await transactAll(
 *   [{ quota: vouchers, id: code }, { quota: perUser, id: `${user}:${code}` }],
 *   () => db.insertClaim(code, user), // throws on a duplicate: both units go back
 * )
 * ```
 */
export async function transactAll<T>(
  items: readonly ConsumeAllItem[],
  fn: (result: ConsumeAllResult) => T | Promise<T>,
  options: TransactAllOptions = {},
): Promise<T> {
  checkFunction('fn', fn)
  checkCallOptions(options, TRANSACT_ALL_OPTION_KEYS)
  const { irreversible, ...reserveOptions } = options
  const held = await reserveAll(items, reserveOptions)
  if (!held.allowed) {
    const index = held.refused?.index ?? 0
    throw new QuotaExceededError(held.refused?.quota ?? 'unknown', held.results[index]!)
  }
  const result = resultOf(held)
  let value: T
  try {
    value = await fn(result)
  } catch (error) {
    // Irreversible work keeps its units; otherwise they all go back.
    if (irreversible) await held.commit()
    else await releaseAfter(held, items, error)
    throw error
  }
  await held.commit()
  return value
}

/** Release after `fn` failed; a release that fails too is a CompensationError carrying both. */
async function releaseAfter(held: ReservationAll, items: readonly ConsumeAllItem[], cause: unknown): Promise<void> {
  try {
    await held.release()
  } catch (failure) {
    if (CompensationError.isInstance(failure)) throw failure
    throw new CompensationError(`transactAll could not give back ${items.length} item(s) after the function failed`, {
      cause,
      compensationError: failure,
      pending: items.map((item) => ({ quota: item.quota.name, id: item.id, cost: item.cost ?? 1 })),
    })
  }
}
