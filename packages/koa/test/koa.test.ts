import type { Server } from 'node:http'
import { createMemoryStore } from '@andromeda/memory'
import { hourlyQuota, recordOutcomes } from '@andromeda/middleware-cases'
import Koa from 'koa'
import Koa2 from 'koa2'
import request from 'supertest'
import { afterEach, describe, expect, it } from 'vitest'
import { koaQuota } from '../src/index.js'

// What only Koa has: it settles before the response is written, a handler may write `ctx.res`
// itself, and an unmatched route is a 404 of Koa's own. Everything else is in the shared table
// (test/cases.test.ts).

type KoaClass = typeof Koa

const servers: Server[] = []
afterEach(() => {
  for (const server of servers.splice(0)) server.close()
})

function setup(KoaApp: KoaClass) {
  const appErrors: unknown[] = []
  const { quota, compensations } = hourlyQuota(createMemoryStore())
  const { outcomes, refundWhen } = recordOutcomes()
  const app = new KoaApp()
  app.silent = true
  app.on('error', (error) => appErrors.push(error))
  app.use(
    koaQuota({
      quota,
      id: () => 'u',
      refundWhen,
    }),
  )
  app.use((ctx) => {
    if (ctx.path === '/throws') throw new Error('boom')
    if (ctx.path === '/sends-then-throws') {
      ctx.respond = false
      ctx.res.writeHead(200, { 'content-type': 'application/json' })
      ctx.res.end('{"ok":true}')
      throw new Error('late')
    }
    if (ctx.path === '/ok') ctx.body = 'ok'
    // Anything else falls through: Koa answers 404 itself.
  })
  const server = app.listen(0)
  servers.push(server)
  return { server, quota, compensations, outcomes, appErrors }
}

describe.each([
  ['Koa 3', Koa],
  ['Koa 2', Koa2 as KoaClass],
])('koaQuota on %s', (_name, KoaApp) => {
  it('settles before the response goes out: a thrown error is refunded by the time the client has the 500', async () => {
    const { server, quota, compensations, outcomes } = setup(KoaApp)
    await request(server).get('/throws').expect(500)
    // No waiting: Koa settles before the response is written.
    expect(compensations).toEqual([1])
    expect(outcomes).toHaveLength(1)
    expect((outcomes[0]!.error as Error).message).toBe('boom')
    expect((await quota.get('u')).usage).toBe(0)
  })

  it('refunds an unmatched route (Koa answers 404 itself)', async () => {
    const { server, quota, outcomes } = setup(KoaApp)
    await request(server).get('/nowhere').expect(404)
    expect(outcomes).toEqual([{ status: 404, aborted: false }])
    expect((await quota.get('u')).usage).toBe(0)
  })

  it('a handler that sends and then throws yields one response and no ERR_HTTP_HEADERS_SENT', async () => {
    const { server, appErrors, outcomes } = setup(KoaApp)
    const res = await request(server).get('/sends-then-throws')
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ ok: true })
    expect(outcomes).toHaveLength(1)
    expect(appErrors.map((e) => (e as Error).message)).toEqual(['late'])
    expect(appErrors.some((e) => (e as { code?: string }).code === 'ERR_HTTP_HEADERS_SENT')).toBe(false)
  })
})
