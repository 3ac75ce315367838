import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BACKENDS, servicesAvailable, startTestService, type TestService } from './helpers.js'

const services = await servicesAvailable()
if (!services.ok) console.warn(`Redis + PostgreSQL tests skipped (set CI=true to require them): ${services.reason}`)

describe.each(BACKENDS)('flash-sale on $name', (backend) => {
  const needsServices = backend.redisUrl !== undefined
  const available = !needsServices || services.ok
  let service: TestService
  // Users whose claim insert fails, to prove the units go back.
  const failingInserts = new Set<string>()
  let voucherSeq = 0
  const newVoucher = async (limit: number) => {
    const code = `V${++voucherSeq}`
    await service.db.upsertVouchers([{ code, limit }])
    return code
  }

  beforeAll(async () => {
    if (!available) return
    service = await startTestService(backend, {
      wrapDb: (db) => ({
        ...db,
        async insertClaim(voucher, user) {
          if (failingInserts.has(user)) throw new Error(`insert of ${user} failed on purpose`)
          return db.insertClaim(voucher, user)
        },
      }),
    })
  })
  afterAll(async () => {
    await service?.close()
  })

  it.skipIf(!available)(
    'a claim is granted once per user; a second claim by the same user is refused as already-claimed',
    async () => {
      const code = await newVoucher(10)
      const first = await service.post('/claim', { voucher: code, user: 'ann' })
      expect(first.status).toBe(201)
      expect(first.body).toMatchObject({ voucher: code, user: 'ann', usage: 1, remaining: 9 })
      const again = await service.post('/claim', { voucher: code, user: 'ann' })
      expect(again.status).toBe(409)
      expect(again.body).toMatchObject({ reason: 'already-claimed', 'violated-policies': ['per-user'] })
      expect(again.headers.get('content-type')).toContain('application/problem+json')
      expect(await service.db.countClaims(code)).toBe(1)
      expect((await service.sale.vouchers.get(code)).usage).toBe(1)
    },
  )

  it.skipIf(!available)(
    'claims past the limit are refused as sold-out and leave no row and no per-user unit',
    async () => {
      const code = await newVoucher(2)
      expect((await service.post('/claim', { voucher: code, user: 'a' })).status).toBe(201)
      expect((await service.post('/claim', { voucher: code, user: 'b' })).status).toBe(201)
      const late = await service.post('/claim', { voucher: code, user: 'c' })
      expect(late.status).toBe(409)
      expect(late.body).toMatchObject({ reason: 'sold-out', 'violated-policies': ['voucher'] })
      expect(await service.db.countClaims(code)).toBe(2)
      expect((await service.sale.perUser.get(`c:${code}`)).usage).toBe(0)
    },
  )

  it.skipIf(!available)(
    'unclaim deletes the claim and gives both units back, so the unit can be claimed again',
    async () => {
      const code = await newVoucher(1)
      expect((await service.post('/claim', { voucher: code, user: 'dan' })).status).toBe(201)
      expect((await service.post('/claim', { voucher: code, user: 'eve' })).body).toMatchObject({ reason: 'sold-out' })
      const unclaim = await service.post('/unclaim', { voucher: code, user: 'dan' })
      expect(unclaim.status).toBe(200)
      expect(await service.db.countClaims(code)).toBe(0)
      expect((await service.sale.vouchers.get(code)).usage).toBe(0)
      expect((await service.sale.perUser.get(`dan:${code}`)).usage).toBe(0)
      expect((await service.post('/claim', { voucher: code, user: 'eve' })).status).toBe(201)
      // dan's per-user unit is back too: once there is room, he may claim again.
      await service.post('/unclaim', { voucher: code, user: 'eve' })
      expect((await service.post('/claim', { voucher: code, user: 'dan' })).status).toBe(201)
    },
  )

  it.skipIf(!available)('unclaiming a claim that does not exist is a 404 and gives nothing back', async () => {
    const code = await newVoucher(3)
    expect((await service.post('/claim', { voucher: code, user: 'fay' })).status).toBe(201)
    const response = await service.post('/unclaim', { voucher: code, user: 'gus' })
    expect(response.status).toBe(404)
    expect((await service.sale.vouchers.get(code)).usage).toBe(1)
  })

  it.skipIf(!available)('a failed claim insert gives back both the voucher unit and the per-user unit', async () => {
    const code = await newVoucher(1)
    failingInserts.add('hal')
    const failed = await service.post('/claim', { voucher: code, user: 'hal' })
    failingInserts.delete('hal')
    expect(failed.status).toBe(500)
    expect(service.errors.some((error) => String(error).includes('insert of hal failed on purpose'))).toBe(true)
    expect(await service.db.countClaims(code)).toBe(0)
    expect((await service.sale.vouchers.get(code)).usage).toBe(0)
    expect((await service.sale.perUser.get(`hal:${code}`)).usage).toBe(0)
    // The only unit is free again, and hal himself is not marked as having claimed.
    expect((await service.post('/claim', { voucher: code, user: 'hal' })).status).toBe(201)
  })

  it.skipIf(!available)('concurrent claims never oversell: 300 users racing for 50 units get exactly 50', async () => {
    const code = await newVoucher(50)
    const responses = await Promise.all(
      Array.from({ length: 300 }, (_, i) => service.post('/claim', { voucher: code, user: `racer-${i % 240}` })),
    )
    const granted = responses.filter((r) => r.status === 201).length
    expect(responses.every((r) => r.status === 201 || r.status === 409)).toBe(true)
    expect(granted).toBe(50)
    expect(await service.db.countClaims(code)).toBe(50)
    expect((await service.sale.vouchers.get(code)).usage).toBe(50)
  })

  it.skipIf(!available)('the sync writes each voucher usage back to the vouchers table', async () => {
    const code = await newVoucher(5)
    for (const user of ['i1', 'i2', 'i3']) await service.post('/claim', { voucher: code, user })
    expect((await service.db.vouchers()).find((v) => v.code === code)?.usage).toBe(0)
    await service.sale.sync.flush()
    expect((await service.db.vouchers()).find((v) => v.code === code)?.usage).toBe(3)
  })

  it.skipIf(!available)(
    'a counter that went missing is reloaded from the claim rows, not from the stale usage column',
    async () => {
      const code = await newVoucher(4)
      for (const user of ['j1', 'j2', 'j3']) await service.post('/claim', { voucher: code, user })
      // The usage column still says 0 (no sync yet); the counter vanishes (restart, eviction).
      await service.sale.vouchers.reset(code)
      const responses = await Promise.all(
        ['k1', 'k2', 'k3'].map((user) => service.post('/claim', { voucher: code, user })),
      )
      expect(responses.filter((r) => r.status === 201)).toHaveLength(1)
      expect(await service.db.countClaims(code)).toBe(4)
    },
  )

  it.skipIf(!available)('an unknown voucher is a 404 and a malformed body a 400', async () => {
    expect((await service.post('/claim', { voucher: 'NOPE', user: 'x' })).status).toBe(404)
    expect((await service.post('/unclaim', { voucher: 'NOPE', user: 'x' })).status).toBe(404)
    expect((await service.post('/claim', { voucher: 'a:b', user: 'x' })).status).toBe(400)
    expect((await service.post('/claim', { user: 'x' })).status).toBe(400)
  })
})

describe('the attempts limiter (expressQuota)', () => {
  let service: TestService
  beforeAll(async () => {
    service = await startTestService(BACKENDS[0]!, { attemptsPerMinute: 2 })
    await service.db.upsertVouchers([{ code: 'L', limit: 100 }])
  })
  afterAll(async () => {
    await service?.close()
  })

  it('a user past the attempts per minute gets a 429 with RateLimit headers, and the claim is not run', async () => {
    const first = await service.post('/claim', { voucher: 'L', user: 'spammer' })
    expect(first.status).toBe(201)
    expect(first.headers.get('ratelimit')).toContain('"attempts"')
    await service.post('/claim', { voucher: 'L', user: 'spammer' })
    const third = await service.post('/unclaim', { voucher: 'L', user: 'spammer' })
    expect(third.status).toBe(429)
    expect(third.headers.get('content-type')).toContain('application/problem+json')
    expect(await service.db.countClaims('L')).toBe(1)
  })
})
