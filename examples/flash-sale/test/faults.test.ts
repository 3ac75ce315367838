/**
 * The faults `pnpm chaos` found, each shrunk to its smallest case: a counter that vanishes
 * (Redis restarted) at the worst moment, a store reply that is lost, a store that is down.
 */
import { type CounterStore, StoreError } from '@andromeda/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BACKENDS, servicesAvailable, startTestService, type TestService } from './helpers.js'

const services = await servicesAvailable()
if (!services.ok) console.warn(`Redis + PostgreSQL fault tests skipped (set CI=true to require them): ${services.reason}`)

/** A store that delegates to `store`, with `apply` replaced. */
function withApply(store: CounterStore, apply: CounterStore['apply']): CounterStore {
  return {
    capabilities: store.capabilities,
    apply,
    seed: (...args) => store.seed(...args),
    get: (...args) => store.get(...args),
    set: (...args) => store.set(...args),
    delete: (...args) => store.delete(...args),
    acquireLock: (...args) => store.acquireLock(...args),
    releaseLock: (...args) => store.releaseLock(...args),
    close: () => store.close?.() ?? Promise.resolve(),
  }
}

describe.each(BACKENDS)('flash-sale faults on $name', (backend) => {
  const available = backend.redisUrl === undefined || services.ok
  let service: TestService
  /** Run once after the claim row of `user` is deleted / before it is inserted. */
  const afterDelete = new Map<string, () => Promise<void>>()
  const beforeInsert = new Map<string, () => Promise<void>>()
  /** Users whose next apply is counted but whose reply is lost / whose apply fails outright. */
  const lostReply = new Set<string>()
  const storeDown = new Set<string>()
  const idempotencyKeys: (string | undefined)[] = []
  let voucherSeq = 0
  const newVoucher = async (limit: number) => {
    const code = `F${++voucherSeq}`
    await service.db.upsertVouchers([{ code, limit }])
    return code
  }
  const takeOnce = <T>(map: Map<string, T>, key: string) => {
    const value = map.get(key)
    map.delete(key)
    return value
  }

  beforeAll(async () => {
    if (!available) return
    service = await startTestService(backend, {
      wrapDb: (db) => ({
        ...db,
        async deleteClaim(voucher, user) {
          const deleted = await db.deleteClaim(voucher, user)
          await takeOnce(afterDelete, user)?.()
          return deleted
        },
        async insertClaim(voucher, user) {
          await takeOnce(beforeInsert, user)?.()
          return db.insertClaim(voucher, user)
        },
      }),
      wrapStore: (store) =>
        withApply(store, async (ops, options) => {
          const user = [...storeDown, ...lostReply].find((u) => ops.some((op) => op.key.includes(`${u}%3A`)))
          if (user && storeDown.has(user)) throw new StoreError('Redis apply got no reply within 2000 ms', { retryable: false })
          const result = await store.apply(ops, options)
          if (user && lostReply.delete(user)) {
            idempotencyKeys.push(options?.idempotencyKey)
            // Counted, but the caller never hears it: a dropped connection after the script ran.
            throw new StoreError('Redis apply failed: Connection is closed.', { retryable: options?.idempotencyKey !== undefined })
          }
          return result
        }),
    })
  })
  afterAll(async () => {
    await service?.close()
  })

  it.skipIf(!available)(
    'a counter that vanishes between the unclaim delete and its refund is not taken down twice (no oversell)',
    async () => {
      const code = await newVoucher(2)
      expect((await service.post('/claim', { voucher: code, user: 'ann' })).status).toBe(201)
      expect((await service.post('/claim', { voucher: code, user: 'bob' })).status).toBe(201)
      // Redis restarts right after ann's row is deleted: her refund finds no counter. Reloading
      // it first would count 1 row and the refund would then leave 0: two more claims granted.
      afterDelete.set('ann', () => service.sale.vouchers.reset(code))
      expect((await service.post('/unclaim', { voucher: code, user: 'ann' })).status).toBe(200)
      const late = await Promise.all(['cat', 'dan', 'eve'].map((user) => service.post('/claim', { voucher: code, user })))
      expect(late.filter((r) => r.status === 201)).toHaveLength(1)
      expect(await service.db.countClaims(code)).toBe(2)
      expect((await service.sale.vouchers.get(code)).usage).toBe(2)
    },
  )

  it.skipIf(!available)(
    'a counter reloaded while a claim is between its counter and its row cannot oversell: the database refuses the row',
    async () => {
      const code = await newVoucher(1)
      // slo holds the only unit; Redis restarts; fay's claim reloads the counter from the rows
      // (0, slo's row is not there yet) and takes the unit again. Then slo's insert runs.
      beforeInsert.set('slo', async () => {
        await service.sale.vouchers.reset(code)
        expect((await service.post('/claim', { voucher: code, user: 'fay' })).status).toBe(201)
      })
      const slow = await service.post('/claim', { voucher: code, user: 'slo' })
      expect(slow.status).toBe(409)
      expect(slow.body).toMatchObject({ reason: 'sold-out' })
      expect(await service.db.countClaims(code)).toBe(1)
      expect((await service.sale.vouchers.get(code)).usage).toBe(1)
      // slo's per-user unit went back: he may claim once there is room.
      expect((await service.sale.perUser.get(`slo:${code}`)).usage).toBe(0)
    },
  )

  it.skipIf(!available)(
    'a voucher counter below the claim rows is brought up by the claim the database refuses, and never past the limit',
    async () => {
      const code = await newVoucher(2)
      for (const user of ['kim', 'lou']) expect((await service.post('/claim', { voucher: code, user })).status).toBe(201)
      // A reload that missed both claims in flight: the counter says 0, the rows say 2.
      await service.sale.vouchers.set(code, 0)
      const first = await service.post('/claim', { voucher: code, user: 'max' })
      expect(first.status).toBe(409)
      expect(first.body).toMatchObject({ reason: 'sold-out' })
      expect((await service.sale.vouchers.get(code)).usage).toBe(1)
      expect((await service.sale.perUser.get(`max:${code}`)).usage).toBe(0)
      expect((await service.post('/claim', { voucher: code, user: 'ned' })).status).toBe(409)
      expect((await service.sale.vouchers.get(code)).usage).toBe(2)
      // At the limit the counter refuses by itself: no more claims reach the database.
      expect((await service.post('/claim', { voucher: code, user: 'oli' })).body).toMatchObject({ reason: 'sold-out' })
      expect((await service.sale.vouchers.get(code)).usage).toBe(2)
      expect(await service.db.countClaims(code)).toBe(2)
    },
  )

  it.skipIf(!available)('a claim whose store reply was lost is sent again with its idempotency key and counted once', async () => {
    const code = await newVoucher(5)
    lostReply.add('gil')
    const claim = await service.post('/claim', { voucher: code, user: 'gil' })
    expect(claim.status).toBe(201)
    expect(idempotencyKeys.at(-1)).toEqual(expect.any(String))
    expect(await service.db.countClaims(code)).toBe(1)
    expect((await service.sale.vouchers.get(code)).usage).toBe(1)
    expect((await service.sale.perUser.get(`gil:${code}`)).usage).toBe(1)
  })

  it.skipIf(!available)('an unclaim refund whose reply was lost is sent again and gives the unit back once', async () => {
    const code = await newVoucher(5)
    for (const user of ['hal', 'ivy']) expect((await service.post('/claim', { voucher: code, user })).status).toBe(201)
    lostReply.add('hal')
    expect((await service.post('/unclaim', { voucher: code, user: 'hal' })).status).toBe(200)
    expect(await service.db.countClaims(code)).toBe(1)
    expect((await service.sale.vouchers.get(code)).usage).toBe(1)
    expect((await service.sale.perUser.get(`hal:${code}`)).usage).toBe(0)
  })

  it.skipIf(!available)('a store fault is a typed 503: problem body with the error code, Retry-After, nothing counted', async () => {
    const code = await newVoucher(5)
    storeDown.add('joe')
    const response = await service.post('/claim', { voucher: code, user: 'joe' })
    storeDown.delete('joe')
    expect(response.status).toBe(503)
    expect(response.headers.get('content-type')).toContain('application/problem+json')
    expect(response.headers.get('retry-after')).toBe('1')
    expect(response.body).toMatchObject({ status: 503, code: 'ERR_STORE', retryable: false })
    expect(await service.db.countClaims(code)).toBe(0)
    expect((await service.sale.vouchers.get(code)).usage).toBe(0)
  })
})
