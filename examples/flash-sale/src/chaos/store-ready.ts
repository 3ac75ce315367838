import { setTimeout as sleep } from 'node:timers/promises'
import type { Quota } from '@andromeda/core'

/** Wait until the store answers again after the last fault or failover (bounded: 15 s). */
export async function storeReady(vouchers: Quota, code: string): Promise<void> {
  const deadline = Date.now() + 15_000
  for (;;) {
    try {
      await vouchers.get(code)
      return
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`the store did not recover within 15 s: ${(error as Error).message}`)
      await sleep(100)
    }
  }
}
