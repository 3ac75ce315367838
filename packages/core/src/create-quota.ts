import { QuotaEngine } from './quota.js'
import type { QuotaOptions } from './quota-options.js'
import type { Quota } from './types.js'

/**
 * Create a quota: a named limit over usage counters in a `CounterStore`.
 *
 * Constant options are validated now (throws `InvalidArgumentError` naming the option);
 * function-valued options are validated on each call, before the store is touched.
 *
 * Guarantees, on any store whose `capabilities.atomic` covers the callers: usage never passes
 * the limit and never drops below zero; a refused call changes nothing; a counter's TTL is set
 * when it is created and never re-armed; a hold not settled within `holdMs` comes back by itself.
 *
 * @param options - see `QuotaOptions`: `name`, `store`, `limit` (number, null or function),
 *   `loadUsage`, `ttlMs`, `period`, `lock`, `limitCacheTtlMs`, `onStoreError`, `cost`,
 *   `idempotencyTtlMs`, `holdMs`, `retry`, `clock`, `hooks`.
 * @throws InvalidArgumentError when an option is out of contract.
 *
 * @example
 * ```ts
 * import { createQuota } from '@andromeda/core'
 * import { createMemoryStore } from '@andromeda/memory'
 *
 * const vouchers = createQuota({
 *   name: 'voucher',
 *   store: createMemoryStore(),
 *   limit: async (code) => db.voucherLimit(code),
 *   loadUsage: async (code) => db.voucherUsage(code),
 * })
 * const result = await vouchers.consume('SUMMER24')
 * if (!result.allowed) throw new Error('sold out')
 * ```
 */
export function createQuota<D = unknown>(options: QuotaOptions<D>): Quota<D> {
  return new QuotaEngine(options)
}
