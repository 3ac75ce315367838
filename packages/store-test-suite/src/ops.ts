import type { CounterOp } from '@andromeda/core'

/** The ops the store-level tests send: a consume up to `max` (creating the counter, with `ttlMs` when given). */
export const consume = (key: string, delta: number, max: number, ttlMs?: number): CounterOp => ({
  key,
  delta,
  max,
  ifMissing: 'create',
  ...(ttlMs === undefined ? {} : { ttlMs }),
})

/** A refund of `delta` units, never below 0, reporting a missing counter (as the engine sends it). */
export const refund = (key: string, delta: number): CounterOp => ({ key, delta: -delta, min: 0, ifMissing: 'report' })
