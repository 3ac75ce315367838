/**
 * One Fastify HTTP contender, run as its own process like `http-server.ts` (Express): bare
 * Fastify, `fastifyQuota` on the memory store, and @fastify/rate-limit (its memory store).
 * Prints `{"port": N}` once listening. The names are in `http-fastify.ts`.
 */
import type { AddressInfo } from 'node:net'
import { createQuota } from '@andromeda/core'
import { fastifyQuota } from '@andromeda/fastify'
import { createMemoryStore } from '@andromeda/memory'
import rateLimit from '@fastify/rate-limit'
import Fastify, { type FastifyInstance } from 'fastify'

const HUGE = 1_000_000_000_000

const plugins: Record<string, (app: FastifyInstance) => PromiseLike<unknown>> = {
  'bare fastify': async () => undefined,
  'fastifyQuota + memory': (app) =>
    app.register(fastifyQuota, {
      quota: createQuota({ name: 'api', store: createMemoryStore(), limit: HUGE, period: 'hour' }),
      id: (request) => request.ip,
    }),
  '@fastify/rate-limit (memory)': (app) => app.register(rateLimit, { max: HUGE, timeWindow: 3_600_000 }),
}

const name = process.argv[2] ?? ''
const register = plugins[name]
if (!register) throw new Error(`unknown contender ${name}; one of ${Object.keys(plugins).join(', ')}`)
const app = Fastify()
await register(app)
app.get('/', async () => 'ok')
await app.listen({ port: 0, host: '127.0.0.1' })
console.log(JSON.stringify({ port: (app.server.address() as AddressInfo).port }))
process.on('SIGTERM', () => process.exit(0))
