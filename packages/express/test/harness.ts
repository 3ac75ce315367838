import { once } from 'node:events'
import { type GateSpec, type MiddlewareHarness, servedApp } from '@andromeda/middleware-cases'
import type express from 'express'
import type { Request } from 'express'
import { expressQuota } from '../src/index.js'

/** The middleware for one gate of the shared table, its custom 429 body through `onExceeded`. */
function middleware({ refusalBody, ...options }: GateSpec<Request>) {
  return expressQuota<Request>({
    ...options,
    ...(refusalBody ? { onExceeded: (_req, res, refusal) => void res.json(refusalBody(refusal)) } : {}),
  })
}

/** The shared middleware table's standard app on Express (5 or 4: the same code runs on both). */
export function expressHarness(name: string, make: typeof express): MiddlewareHarness<Request> {
  return {
    name,
    request: {
      header: (req, header) => req.get(header),
      query: (req, key) => (typeof req.query[key] === 'string' ? (req.query[key] as string) : undefined),
      path: (req) => req.path,
      method: (req) => req.method,
    },
    create: middleware,
    async serve(gates) {
      const app = make()
      for (const gate of gates) app.use(middleware(gate))
      app.get('/ok', (_req, res) => {
        res.json(res.locals.quota ?? null)
      })
      app.get('/throws', () => {
        throw new Error('boom')
      })
      app.get('/answers-500', (_req, res) => {
        res.status(500).json({ error: 'failed' })
      })
      app.get('/teapot', () => {
        throw Object.assign(new Error('teapot'), { status: 418 })
      })
      app.get('/slow', (_req, res) => {
        setTimeout(() => res.json({ done: true }), 300)
      })
      app.post('/claim', (req, res) => {
        res.status(req.query.fail === '1' ? 500 : 200).json(res.locals.quota ?? null)
      })
      app.use((_req, res) => {
        res.send('ok')
      })
      const server = app.listen(0, '127.0.0.1')
      await once(server, 'listening')
      return servedApp(server)
    },
  }
}
