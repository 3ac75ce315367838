import { createQuota } from '@andromeda/core'
import { createMemoryStore } from '@andromeda/memory'
import { MemoryStore } from 'express-rate-limit'
import { RateLimiterMemory } from 'rate-limiter-flexible'
import { type Contender, compare, type ScenarioResult } from './harness.js'

const HUGE = 1_000_000_000_000

/** consume() through createQuota + memory store vs the in-memory limiters users pick instead. */
export async function benchMemory(options: { rounds: number; total: number }): Promise<ScenarioResult[]> {
  const results: ScenarioResult[] = []
  for (const keys of [1, 10_000]) {
    const key = (i: number) => (keys === 1 ? 'hot' : `k${i % keys}`)
    const contenders: Contender[] = [
      {
        name: 'andromeda createQuota + memory',
        async setup() {
          const quota = createQuota({ name: 'bench', store: createMemoryStore({ max: keys * 2 + 10 }), limit: HUGE })
          return (i) => quota.consume(key(i))
        },
      },
      {
        name: 'rate-limiter-flexible RateLimiterMemory',
        async setup() {
          const limiter = new RateLimiterMemory({ points: HUGE, duration: 0 })
          return (i) => limiter.consume(key(i))
        },
      },
      {
        name: 'express-rate-limit MemoryStore',
        async setup() {
          const store = new MemoryStore()
          store.init({ windowMs: 3_600_000 } as never)
          return (i) => store.increment(key(i))
        },
        async teardown() {},
      },
    ]
    for (const concurrency of [1, 50]) {
      results.push(
        await compare(`memory path, ${keys === 1 ? '1 key' : '10k keys'}, concurrency ${concurrency}`, contenders, {
          ...options,
          concurrency,
        }),
      )
    }
  }
  return results
}
