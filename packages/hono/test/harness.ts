import { once } from 'node:events'
import type { Server } from 'node:http'
import { type GateSpec, type MiddlewareHarness, servedApp } from '@andromeda/middleware-cases'
import { serve } from '@hono/node-server'
import { type Context, Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { type HonoQuotaOptions, honoQuota, type QuotaVariables } from '../src/index.js'

/** The middleware options for one gate of the shared table, its custom 429 body through `onExceeded`. */
export function middlewareOptions({ refusalBody, ...options }: GateSpec<Context>): HonoQuotaOptions {
  return {
    ...options,
    ...(refusalBody ? { onExceeded: (c: Context, refusal) => c.json(refusalBody(refusal) as object) } : {}),
  }
}

/** The shared middleware table's standard app on Hono 4 over @hono/node-server, with Hono's default error handling. */
export function honoHarness(name: string): MiddlewareHarness<Context> {
  return {
    name,
    request: {
      header: (c, header) => c.req.header(header),
      query: (c, key) => c.req.query(key),
      path: (c) => c.req.path,
      method: (c) => c.req.method,
    },
    create: (gate) => honoQuota(middlewareOptions(gate)),
    async serve(gates) {
      const app = new Hono<{ Variables: QuotaVariables }>()
      for (const gate of gates) app.use(honoQuota(middlewareOptions(gate)))
      app.get('/ok', (c) => c.json(c.get('quota') ?? null))
      app.get('/throws', () => {
        throw new Error('boom')
      })
      app.get('/answers-500', (c) => c.json({ error: 'failed' }, 500))
      app.get('/teapot', () => {
        throw new HTTPException(418, { message: 'teapot' })
      })
      app.get('/slow', async (c) => {
        await new Promise((resolve) => setTimeout(resolve, 300))
        return c.json({ done: true })
      })
      app.post('/claim', (c) => c.json(c.get('quota') ?? null, c.req.query('fail') === '1' ? 500 : 200))
      app.all('*', (c) => c.text('ok'))
      const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server
      if (!server.listening) await once(server, 'listening')
      return servedApp(server)
    },
  }
}
