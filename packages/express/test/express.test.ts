import { createQuota } from '@andromeda/core'
import { createMemoryStore } from '@andromeda/memory'
import { hourlyQuota, recordOutcomes } from '@andromeda/middleware-cases'
import express, { type ErrorRequestHandler } from 'express'
import express4 from 'express4'
import request from 'supertest'
import { describe, expect, it, vi } from 'vitest'
import { expressQuota } from '../src/index.js'

// What only Express has: `next(err)`, an error thrown after the response was sent, error
// handlers of four arguments, per-route middleware. Everything else is in the shared table
// (test/cases.test.ts).

type ExpressFactory = typeof express

function setup(make: ExpressFactory) {
  const errors: unknown[] = []
  const { quota, compensations } = hourlyQuota(createMemoryStore())
  const { outcomes, refundWhen, settled } = recordOutcomes()
  const app = make()
  app.use(
    expressQuota({
      quota,
      id: () => 'u',
      refundWhen,
    }),
  )
  app.get('/forwards', (_req, _res, next) => {
    next(new Error('forwarded'))
  })
  app.get('/sends-then-throws', (_req, res) => {
    res.json({ ok: true })
    throw new Error('late')
  })
  const onError: ErrorRequestHandler = (error, _req, res, next) => {
    errors.push(error)
    // A well-behaved error handler: only answer when nothing was sent yet.
    if (res.headersSent) return next(error)
    res.status(500).json({ error: String(error.message) })
  }
  app.use(onError)
  return { app, quota, compensations, outcomes, errors, settled }
}

describe.each([
  ['Express 5', express],
  ['Express 4', express4 as ExpressFactory],
])('expressQuota on %s', (_name, make) => {
  it('refunds a handler that forwards an error with next(err), once', async () => {
    const { app, quota, compensations, outcomes, settled } = setup(make)
    await request(app).get('/forwards').expect(500)
    await settled(1)
    await vi.waitFor(() => expect(compensations).toEqual([1]))
    expect(outcomes).toHaveLength(1)
    expect((await quota.get('u')).usage).toBe(0)
  })

  it('a handler that sends and then throws yields one response and no ERR_HTTP_HEADERS_SENT', async () => {
    const { app, errors, outcomes, settled } = setup(make)
    const res = await request(app).get('/sends-then-throws')
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ ok: true })
    await settled(1)
    expect(outcomes).toHaveLength(1)
    expect(errors.map((e) => (e as Error).message)).toEqual(['late'])
    expect(errors.some((e) => (e as { code?: string }).code === 'ERR_HTTP_HEADERS_SENT')).toBe(false)
  })

  it('forwards an id function that throws to the error handler and charges nothing', async () => {
    const quota = createQuota({ name: 'api', store: createMemoryStore(), limit: 3 })
    const app = make()
    app.use(
      expressQuota({
        quota,
        id: () => {
          throw new Error('no user')
        },
      }),
    )
    app.get('/', (_req, res) => {
      res.send('ok')
    })
    app.use(((error, _req, res, _next) => {
      res.status(401).send(error.message)
    }) as ErrorRequestHandler)
    const res = await request(app).get('/').expect(401)
    expect(res.text).toBe('no user')
  })

  it('guards only the routes it is mounted on', async () => {
    const quota = createQuota({ name: 'api', store: createMemoryStore(), limit: 3 })
    const app = make()
    app.get('/guarded', expressQuota({ quota, id: () => 'u' }), (_req, res) => {
      res.send('ok')
    })
    app.get('/open', (_req, res) => {
      res.send('ok')
    })
    const guarded = await request(app).get('/guarded').expect(200)
    expect(guarded.headers.ratelimit).toBe('"api";r=2')
    const open = await request(app).get('/open').expect(200)
    expect(open.headers.ratelimit).toBeUndefined()
    expect((await quota.get('u')).usage).toBe(1)
  })
})
