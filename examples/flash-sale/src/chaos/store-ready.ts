import type { Quota } from '@andromeda/core'
import { retryWithin } from '../tools.js'

/**
 * Wait until the store answers for every voucher after the last fault or failover (bounded:
 * 15 s). Each code's keys may sit on another node of a Cluster, so every code is asked.
 */
export async function storeReady(vouchers: Quota, codes: readonly string[]): Promise<void> {
  await retryWithin('the store did not recover', 15_000, () => Promise.all(codes.map((code) => vouchers.get(code))))
}
