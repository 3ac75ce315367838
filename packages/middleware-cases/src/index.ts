/**
 * One table of HTTP middleware cases, run by every framework adapter's tests (Express, Koa,
 * Fastify, Hono) over real HTTP, on memory and on Redis. Each framework adds only what is its own.
 *
 * @example
 * ```ts
 * runMiddlewareCases(expressHarness, [memoryStores(), await redisStores()])
 * ```
 */
import { afterAll, afterEach, describe, it } from 'vitest'
import { MIDDLEWARE_CASES } from './cases.js'
import type { MiddlewareHarness, ServedApp } from './harness.js'
import type { StoreProvider } from './stores.js'

export { hourlyQuota, recordOutcomes, windowStartClock } from './cases/helpers.js'
export { type CaseContext, MIDDLEWARE_CASES, type MiddlewareCase } from './cases.js'
export {
  type GateSpec,
  type MiddlewareHarness,
  type RefusalView,
  type RequestView,
  type ServedApp,
  servedApp,
} from './harness.js'
export { type Answer, call } from './http.js'
export { memoryStores, redisStores, type StoreProvider } from './stores.js'

/**
 * Run every case of the table against `harness`, once per store kind. Cases that bring their
 * own store (a down or a hanging one) run with the first kind only.
 */
export function runMiddlewareCases<Req>(harness: MiddlewareHarness<Req>, stores: StoreProvider[]): void {
  for (const [index, provider] of stores.entries()) {
    describe.runIf(provider.available)(`${harness.name} on ${provider.name}: the shared middleware cases`, () => {
      const open: ServedApp[] = []
      afterEach(async () => {
        await Promise.all(open.splice(0).map((app) => app.close()))
      })
      afterAll(() => provider.cleanup())
      for (const testCase of MIDDLEWARE_CASES) {
        if (testCase.ownStore && index > 0) continue
        it(testCase.name, () =>
          testCase.run({
            harness,
            req: harness.request,
            store: () => provider.create(),
            serve: async (gates) => {
              const app = await harness.serve(gates)
              open.push(app)
              return app
            },
          }),
        )
      }
    })
  }
}
