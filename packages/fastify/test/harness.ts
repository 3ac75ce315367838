import type { AddressInfo } from 'node:net'
import type { GateSpec, MiddlewareHarness } from '@andromeda/middleware-cases'
import type Fastify from 'fastify'
import type { FastifyRequest } from 'fastify'
import { type FastifyQuotaOptions, fastifyQuota } from '../src/index.js'

export type FastifyFactory = typeof Fastify

/** The plugin options for one gate of the shared table, its custom 429 body through `onExceeded`. */
export function pluginOptions({ refusalBody, ...options }: GateSpec<FastifyRequest>): FastifyQuotaOptions {
  return {
    ...options,
    ...(refusalBody
      ? {
          onExceeded: async (_request, reply, refusal) => {
            await reply.send(refusalBody(refusal))
          },
        }
      : {}),
  }
}

const json = (value: unknown) => JSON.stringify(value ?? null)

/** The shared middleware table's standard app on Fastify (5 or 4), with Fastify's default error handling. */
export function fastifyHarness(name: string, make: FastifyFactory): MiddlewareHarness<FastifyRequest> {
  return {
    name,
    request: {
      header: (request, header) => {
        const value = request.headers[header.toLowerCase()]
        return Array.isArray(value) ? value[0] : value
      },
      query: (request, key) => {
        const value = (request.query as Record<string, unknown>)[key]
        return typeof value === 'string' ? value : undefined
      },
      path: (request) => request.url.split('?', 1)[0]!,
      method: (request) => request.method,
    },
    async create(gate) {
      const app = make()
      try {
        await app.register(fastifyQuota, pluginOptions(gate))
        await app.ready()
      } finally {
        await app.close()
      }
    },
    async serve(gates) {
      const app = make({ forceCloseConnections: true })
      for (const gate of gates) await app.register(fastifyQuota, pluginOptions(gate))
      app.get('/ok', async (request, reply) => reply.type('application/json').send(json(request.quota)))
      app.get('/throws', async () => {
        throw new Error('boom')
      })
      app.get('/answers-500', async (_request, reply) => reply.code(500).send({ error: 'failed' }))
      app.get('/teapot', async () => {
        throw Object.assign(new Error('teapot'), { statusCode: 418 })
      })
      app.get('/slow', async () => {
        await new Promise((resolve) => setTimeout(resolve, 300))
        return { done: true }
      })
      app.post('/claim', async (request, reply) => {
        const failed = (request.query as Record<string, unknown>).fail === '1'
        return reply
          .code(failed ? 500 : 200)
          .type('application/json')
          .send(json(request.quota))
      })
      app.all('/*', async () => 'ok')
      await app.listen({ port: 0, host: '127.0.0.1' })
      return {
        url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
        close: () => app.close(),
      }
    },
  }
}
