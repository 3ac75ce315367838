import { createQuota, InvalidArgumentError, type Period } from '@andromeda/core'
import { describe, expect } from 'vitest'
import type { ConformanceOptions } from './conformance-options.js'
import { countedLoader } from './counted-loader.js'
import { randomName } from './random.js'
import { sleep, storeTest } from './store-test.js'

/** The error a call or a factory threw, or undefined. */
async function errorOf(run: () => unknown): Promise<unknown> {
  try {
    await run()
    return undefined
  } catch (error) {
    return error
  }
}

/**
 * Time, windows and idempotency on any store: a retry finds its record whatever happened in
 * between (a new window, the counter's TTL ending, a reload), quotas of one name with different
 * windows never share a counter, and what expired is reclaimed (where the store reports its size).
 *
 * The quotas run on a clock of their own (the stores here have no injected clock), so windows
 * move without waiting; a TTL that must lapse in the store lapses in real time (tens of ms).
 *
 * One `describe` of independent cases: its length is the number of cases, each short and read on its own.
 */
export function timeTests(options: ConformanceOptions): void {
  const test = storeTest(options)

  // Only it(...) cases (two made in loops or by a flag): a long block that reads as a list.
  describe(`time, windows and idempotency on ${options.name}`, () => {
    test('an idempotent retry that crosses a minute boundary replays, and the new minute is not charged', async (store) => {
      // A second before the boundary: the counter's TTL (the rest of the window, 1 s on the
      // store's real clock) outlives the retry, however slow a first call is.
      let now = Date.UTC(2025, 2, 1, 10, 0, 59)
      const quota = createQuota({ name: randomName('calls'), store, limit: 100, period: 'minute', clock: () => now })
      const first = await quota.consume('acct', 1, { idempotencyKey: 'req-1' })
      expect(first).toMatchObject({ status: 'granted', usage: 1, resetAt: Date.UTC(2025, 2, 1, 10, 1) })
      now += 1010
      const retry = await quota.consume('acct', 1, { idempotencyKey: 'req-1' })
      expect(retry).toMatchObject({ status: 'replayed', allowed: true, usage: 1 })
      // The replay answers for the counter it charged: the earlier minute's reset time (give or
      // take the real time that passed on the store's clock, which the quota's frozen one ignores).
      expect(Math.abs(retry.resetAt! - Date.UTC(2025, 2, 1, 10, 1))).toBeLessThan(1000)
      expect((await quota.get('acct')).usage).toBe(0)
      expect(await quota.consume('acct', 1, { idempotencyKey: 'req-2' })).toMatchObject({ status: 'granted', usage: 1 })
    })

    test('an idempotent reserve retried in the next window replays and holds nothing in the new window', async (store) => {
      // At the start of a minute, so the first window's counter (its TTL the rest of the
      // window, on the store's real clock) outlives the test; the retry comes a minute later.
      let now = Date.UTC(2025, 2, 1, 10, 0, 0)
      const quota = createQuota({ name: randomName('calls'), store, limit: 100, period: 'minute', clock: () => now })
      const hold = await quota.reserve('acct', 3, { idempotencyKey: 'job-1', holdMs: 600_000 })
      expect(hold.result).toMatchObject({ status: 'granted', usage: 3 })
      now += 60_000
      const again = await quota.reserve('acct', 3, { idempotencyKey: 'job-1', holdMs: 600_000 })
      expect(again.result).toMatchObject({ status: 'replayed', usage: 3 })
      expect((await quota.get('acct')).usage).toBe(0)
      // The first call's handle still settles its own hold, in its own window.
      expect(await hold.commit(1)).toMatchObject({ usage: 1 })
    })

    test("an idempotent retry after the counter's TTL ended replays and charges nothing", async (store) => {
      const quota = createQuota({ name: randomName('ttl'), store, limit: 5, ttlMs: 30 })
      expect(await quota.consume('acct', 2, { idempotencyKey: 'req-1' })).toMatchObject({ status: 'granted', usage: 2 })
      await sleep(80)
      expect(await quota.consume('acct', 2, { idempotencyKey: 'req-1' })).toMatchObject({
        status: 'replayed',
        usage: 2,
      })
      expect((await quota.get('acct')).usage).toBe(0)
    })

    test('an idempotent retry after the counter was reset and reloaded replays, without a second charge', async (store) => {
      const loader = countedLoader(() => 1)
      const quota = createQuota({ name: randomName('loaded'), store, limit: 5, loadUsage: loader.loadUsage })
      expect(await quota.consume('acct', 1, { idempotencyKey: 'req-1' })).toMatchObject({ status: 'granted', usage: 2 })
      await quota.reset('acct')
      expect(await quota.consume('acct', 1, { idempotencyKey: 'req-1' })).toMatchObject({
        status: 'replayed',
        usage: 2,
      })
      expect((await quota.get('acct')).usage).toBe(1)
      expect(loader.reads()).toBe(2)
    })

    test('an idempotent consumeAll retried in the next window replays', async (store) => {
      let now = Date.UTC(2025, 2, 1, 10, 0, 59, 990)
      const { consumeAll } = await import('@andromeda/core')
      const perMinute = createQuota({ name: randomName('m'), store, limit: 10, period: 'minute', clock: () => now })
      const first = await consumeAll([{ quota: perMinute, id: 'acct', cost: 2 }], { idempotencyKey: 'order-1' })
      expect(first.allowed).toBe(true)
      now += 20
      const retry = await consumeAll([{ quota: perMinute, id: 'acct', cost: 2 }], { idempotencyKey: 'order-1' })
      expect(retry.results[0]).toMatchObject({ status: 'replayed', usage: 2 })
      expect((await perMinute.get('acct')).usage).toBe(0)
    })

    const pairs: [Period, Period, number][] = [
      ['day', 'month', Date.UTC(2025, 2, 1, 10, 0)],
      ['minute', 'hour', Date.UTC(2025, 2, 1, 10, 0)],
      // 2025-03-03 is a Monday: its day and its week start at the same instant.
      ['day', 'week', Date.UTC(2025, 2, 3, 9, 0)],
    ]
    for (const [a, b, at] of pairs) {
      test(`two quotas of one name, per ${a} and per ${b}, never share a counter (windows starting together)`, async (store) => {
        const name = randomName('api')
        const first = createQuota({ name, store, limit: 10, period: a, clock: () => at })
        const second = createQuota({ name, store, limit: 10, period: b, clock: () => at })
        expect(await first.consume('u')).toMatchObject({ allowed: true, usage: 1 })
        expect(await second.consume('u')).toMatchObject({ allowed: true, usage: 1 })
        expect((await first.get('u')).usage).toBe(1)
        expect((await second.get('u')).usage).toBe(1)
      })
    }

    test('two quotas of one name, one with a TTL and one without, never share a counter', async (store) => {
      const name = randomName('api')
      const lasting = createQuota({ name, store, limit: 10 })
      const expiring = createQuota({ name, store, limit: 10, ttlMs: 600_000 })
      expect(await lasting.consume('u', 2)).toMatchObject({ usage: 2 })
      expect(await expiring.consume('u')).toMatchObject({ usage: 1 })
      expect(await lasting.get('u')).not.toHaveProperty('resetAt')
    })

    test('an unknown key in call options is refused naming it, before the store is touched', async (store) => {
      const quota = createQuota({ name: randomName(), store, limit: 5 })
      const error = await errorOf(() => quota.consume('u', 1, { idempotencyKy: 'k' } as never))
      expect(error).toSatisfy(InvalidArgumentError.isInstance)
      expect((error as InvalidArgumentError).argument).toBe('options.idempotencyKy')
      expect((error as Error).message).toContain("'idempotencyKey'")
      expect(
        (await errorOf(() => quota.reserve('u', 1, { holdMS: 10 } as never))) as InvalidArgumentError,
      ).toMatchObject({ argument: 'options.holdMS' })
      expect(
        (await errorOf(() => quota.refund('u', 1, { holdMs: 10 } as never))) as InvalidArgumentError,
      ).toMatchObject({ argument: 'options.holdMs' })
      expect((await quota.get('u')).usage).toBe(0)
    })

    test('holdMs, idempotencyTtlMs and ttlMs of 2^31 ms and more work (store-side lifetimes, no timers)', async (store) => {
      const now = Date.UTC(2025, 2, 1)
      const long = 2 ** 31
      const quota = createQuota({
        name: randomName('long'),
        store,
        limit: 5,
        ttlMs: 30 * 86_400_000,
        idempotencyTtlMs: long,
        holdMs: long,
        clock: () => now,
      })
      const granted = await quota.consume('u', 1, { idempotencyKey: 'k' })
      expect(granted.allowed).toBe(true)
      // The store measures the lifetime on its own (real) clock: a few ms may have passed there.
      expect(granted.resetAt).toBeLessThanOrEqual(now + 30 * 86_400_000)
      expect(granted.resetAt).toBeGreaterThan(now + 30 * 86_400_000 - 1000)
      expect(await quota.consume('u', 1, { idempotencyKey: 'k' })).toMatchObject({ status: 'replayed' })
      const hold = await quota.reserve('u', 2)
      expect(hold.expiresAt).toBe(now + long)
      expect((await quota.get('u')).usage).toBe(3)
      await hold.release()
      expect((await quota.get('u')).usage).toBe(1)
    })

    if (options.size) {
      const size = options.size
      test('expired counters and idempotency records are reclaimed: the store stays within its live entries plus a few', async (store) => {
        const quota = createQuota({ name: randomName('gc'), store, limit: 5, ttlMs: 10, idempotencyTtlMs: 10 })
        // A first call, so a backend that creates its tables on first use has them.
        await quota.consume('warm-up', 1, { idempotencyKey: 'k' })
        await sleep(15)
        const before = await size(store)
        let most = 0
        for (let round = 0; round < 40; round++) {
          await quota.consume(`id-${round}`, 1, { idempotencyKey: 'k' })
          await sleep(15)
          most = Math.max(most, (await size(store)) - before)
        }
        // Each round leaves one counter and one record, both expired by the next round.
        expect(most).toBeLessThanOrEqual(12)
      }, 30_000)
    }
  })
}
