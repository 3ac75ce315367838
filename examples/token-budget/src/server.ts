/**
 * `pnpm start`: the token-budget service. Environment: PORT (default 3000; 0 for a free one),
 * REDIS_URL (Redis, shared by every process and surviving them; default the memory store),
 * KEY_PREFIX (of the Redis keys, default `token-budget:`), API_KEYS (`key=tokens per day,...`,
 * default `demo-key=100000`), HOLD_MS (default 120000), MODEL_TIMEOUT_MS (default 60000),
 * MODEL_DELAY_MS (how long the stubbed model takes, default 200). Prints `listening <url>`;
 * SIGTERM or SIGINT: finish the requests in flight, close, exit 0.
 */
import type { AddressInfo } from 'node:net'
import type { CounterStore } from '@andromeda/core'
import { createMemoryStore } from '@andromeda/memory'
import { createRedisStore } from '@andromeda/redis'
import { Redis } from 'ioredis'
import { createTokenBudgetApp } from './app.js'
import { createStubModel } from './model.js'

const env = (name: string, fallback: string) => process.env[name] || fallback
const dailyTokens = Object.fromEntries(
  env('API_KEYS', 'demo-key=100000')
    .split(',')
    .map((pair) => pair.split('='))
    .map(([key, tokens]) => [key!.trim(), Number(tokens)]),
)

let redis: Redis | undefined
let store: CounterStore
if (process.env.REDIS_URL) {
  redis = new Redis(process.env.REDIS_URL)
  // ioredis reconnects by itself; meanwhile calls fail fast with a StoreError (a 503).
  redis.on('error', (error) => console.error('redis:', error.message))
  store = createRedisStore({ client: redis, prefix: env('KEY_PREFIX', 'token-budget:') })
} else {
  store = createMemoryStore()
}

const { app } = createTokenBudgetApp({
  store,
  dailyTokens,
  holdMs: Number(env('HOLD_MS', '120000')),
  modelTimeoutMs: Number(env('MODEL_TIMEOUT_MS', '60000')),
  model: createStubModel({ delayMs: Number(env('MODEL_DELAY_MS', '200')) }),
})
const server = app.listen(Number(env('PORT', '3000')), '127.0.0.1', () => {
  console.log(`listening http://127.0.0.1:${(server.address() as AddressInfo).port}`)
})
const shutdown = () => {
  server.close(async () => {
    await store.close?.()
    await redis?.quit()
    process.exit(0)
  })
  server.closeIdleConnections()
}
process.once('SIGTERM', shutdown)
process.once('SIGINT', shutdown)
