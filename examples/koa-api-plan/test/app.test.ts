import { randomBytes } from 'node:crypto'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createApiPlanApp, type Plan } from '../src/app.js'
import { openKeyvStore } from '../src/keyv.js'

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379'

/** Redis must answer under CI=true; elsewhere its tests skip with a printed reason. */
async function redisAvailable(): Promise<boolean> {
  const probe = openKeyvStore({
    redisUrl: REDIS_URL,
    namespace: `andromeda-test-probe-${randomBytes(3).toString('hex')}`,
  })
  try {
    await probe.keyv.get('probe')
    return true
  } catch (error) {
    if (process.env.CI === 'true') throw error
    console.warn(`koa-api-plan Redis tests skipped (set CI=true to require them): ${(error as Error).message}`)
    return false
  } finally {
    await probe.close().catch(() => {})
  }
}
const redis = await redisAvailable()

const KEYS: Record<string, Plan> = { 'free-key': 'free', 'pro-key': 'pro' }
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup()
})

async function start(options: { redisUrl?: string; free?: number; clock?: () => number } = {}) {
  const namespace = `andromeda-test-${randomBytes(4).toString('hex')}`
  const handle = openKeyvStore({ redisUrl: options.redisUrl, namespace })
  const { app, quota } = createApiPlanApp({
    store: handle.store,
    planOf: (key) => KEYS[key],
    monthlyCalls: { free: options.free ?? 3 },
    ...(options.clock ? { clock: options.clock } : {}),
  })
  const server: Server = app.listen(0, '127.0.0.1')
  await new Promise((resolve) => server.once('listening', resolve))
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  cleanups.push(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await handle.keyv.clear() // this namespace only
    await handle.close()
  })
  const call = async (path: string, init: { key?: string; method?: string } = {}) => {
    const response = await fetch(`${base}${path}`, {
      method: init.method ?? 'GET',
      headers: init.key ? { 'x-api-key': init.key } : {},
    })
    return { status: response.status, headers: response.headers, body: await response.json() }
  }
  return { call, quota }
}

describe('koa-api-plan on an in-memory Keyv', () => {
  it('each call is charged to the API key and answered with RateLimit headers', async () => {
    const { call } = await start()
    const first = await call('/v1/weather/lisbon', { key: 'free-key' })
    expect(first.status).toBe(200)
    expect(first.body).toMatchObject({ city: 'lisbon', callsLeft: 2 })
    expect(first.headers.get('ratelimit-policy')).toMatch(/^"api";q=3;w=\d+$/)
    expect(first.headers.get('ratelimit')).toMatch(/^"api";r=2;t=\d+$/)
  })

  it('past the monthly limit the key gets a 429 problem with Retry-After; other keys are not affected', async () => {
    const { call } = await start()
    for (let i = 0; i < 3; i++) expect((await call('/v1/weather/oslo', { key: 'free-key' })).status).toBe(200)
    const refused = await call('/v1/weather/oslo', { key: 'free-key' })
    expect(refused.status).toBe(429)
    expect(refused.headers.get('content-type')).toContain('application/problem+json')
    expect(refused.body).toMatchObject({ 'violated-policies': ['api'] })
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect((await call('/v1/weather/oslo', { key: 'pro-key' })).status).toBe(200)
  })

  it('a failed call (404) is not charged', async () => {
    const { call } = await start()
    expect((await call('/v1/weather/atlantis', { key: 'free-key' })).status).toBe(404)
    expect((await call('/v1/usage', { key: 'free-key' })).body).toMatchObject({ used: 0, limit: 3 })
  })

  it('a report costs 25 calls, refused whole when fewer remain; /v1/usage is free', async () => {
    const { call } = await start({ free: 30 })
    expect((await call('/v1/reports', { key: 'free-key', method: 'POST' })).status).toBe(202)
    expect((await call('/v1/reports', { key: 'free-key', method: 'POST' })).status).toBe(429)
    expect((await call('/v1/usage', { key: 'free-key' })).body).toMatchObject({ used: 25, remaining: 5 })
    expect((await call('/v1/usage', { key: 'free-key' })).body).toMatchObject({ used: 25 })
  })

  it('a missing or unknown API key is a 401 and counts nothing', async () => {
    const { call } = await start()
    expect((await call('/v1/weather/lisbon')).status).toBe(401)
    expect((await call('/v1/weather/lisbon', { key: 'stolen' })).status).toBe(401)
  })

  it('the allowance starts over at the next calendar month (UTC)', async () => {
    let now = Date.UTC(2026, 0, 31, 23, 59, 0)
    const { call } = await start({ clock: () => now })
    for (let i = 0; i < 3; i++) await call('/v1/weather/lisbon', { key: 'free-key' })
    expect((await call('/v1/weather/lisbon', { key: 'free-key' })).status).toBe(429)
    now = Date.UTC(2026, 1, 1, 0, 0, 1)
    expect((await call('/v1/weather/lisbon', { key: 'free-key' })).status).toBe(200)
  })
})

describe('koa-api-plan on Keyv + Redis (@keyv/redis, globally atomic)', () => {
  it.skipIf(!redis)('concurrent calls of one key never pass the monthly limit', async () => {
    const { call, quota } = await start({ redisUrl: REDIS_URL, free: 20 })
    const responses = await Promise.all(
      Array.from({ length: 60 }, () => call('/v1/weather/jakarta', { key: 'free-key' })),
    )
    expect(responses.filter((r) => r.status === 200)).toHaveLength(20)
    expect(responses.filter((r) => r.status === 429)).toHaveLength(40)
    expect((await quota.get('free-key', { data: { plan: 'free' } })).usage).toBe(20)
  })
})
