import { once } from 'node:events'
import { type GateSpec, type MiddlewareHarness, servedApp } from '@andromeda/middleware-cases'
import type Koa from 'koa'
import type { Context } from 'koa'
import { koaQuota } from '../src/index.js'

/** The middleware for one gate of the shared table, its custom 429 body through `onExceeded`. */
function middleware({ refusalBody, ...options }: GateSpec<Context>) {
  return koaQuota<Context>({
    ...options,
    ...(refusalBody
      ? {
          onExceeded: (ctx, refusal) => {
            ctx.body = refusalBody(refusal)
          },
        }
      : {}),
  })
}

/** The shared middleware table's standard app on Koa (3 or 2), with Koa's default error handling. */
export function koaHarness(name: string, KoaApp: typeof Koa): MiddlewareHarness<Context> {
  return {
    name,
    request: {
      header: (ctx, header) => ctx.get(header) || undefined,
      query: (ctx, key) => (typeof ctx.query[key] === 'string' ? (ctx.query[key] as string) : undefined),
      path: (ctx) => ctx.path,
      method: (ctx) => ctx.method,
    },
    create: middleware,
    async serve(gates) {
      const app = new KoaApp()
      app.silent = true
      for (const gate of gates) app.use(middleware(gate))
      app.use(async (ctx) => {
        const route = `${ctx.method} ${ctx.path}`
        if (route === 'GET /ok') ctx.body = ctx.state.quota ?? null
        else if (route === 'GET /throws') throw new Error('boom')
        else if (route === 'GET /answers-500') {
          ctx.status = 500
          ctx.body = { error: 'failed' }
        } else if (route === 'GET /teapot') ctx.throw(418, 'teapot')
        else if (route === 'GET /slow') {
          await new Promise((resolve) => setTimeout(resolve, 300))
          ctx.body = { done: true }
        } else if (route === 'POST /claim') {
          ctx.status = ctx.query.fail === '1' ? 500 : 200
          ctx.body = ctx.state.quota ?? null
        } else ctx.body = 'ok'
      })
      const server = app.listen(0, '127.0.0.1')
      await once(server, 'listening')
      return servedApp(server)
    },
  }
}
