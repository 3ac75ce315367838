import type { CounterStore } from '@andromeda/core'
import type { GateSpec, MiddlewareHarness, RequestView, ServedApp } from './harness.js'

/** What a case gets: the harness, a store of the run's kind, and `serve` (closed after the case). */
export interface CaseContext<Req> {
  harness: MiddlewareHarness<Req>
  req: RequestView<Req>
  /** A store of the run's kind (memory or Redis) for one quota. */
  store(): CounterStore
  serve(gates: GateSpec<Req>[]): Promise<ServedApp>
}

export interface MiddlewareCase {
  name: string
  /** The case brings its own store (a down or hanging one): run it once, not once per store kind. */
  ownStore?: boolean
  run<Req>(ctx: CaseContext<Req>): Promise<void>
}
