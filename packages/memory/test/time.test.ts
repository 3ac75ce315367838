import { createQuota, InvalidArgumentError } from '@andromeda/core'
import { describe, expect, it } from 'vitest'
import { Entries } from '../src/entries.js'
import { createMemoryStore } from '../src/index.js'

describe('one clock: a memory store given a clock', () => {
  it('is the time source of a quota created without one: resetAt comes from the fake date', async () => {
    const now = Date.UTC(2025, 0, 15, 12, 0)
    const store = createMemoryStore({ clock: () => now })
    const quota = createQuota({ name: 'api', store, limit: 5, period: 'day' })
    expect(await quota.consume('u')).toMatchObject({ allowed: true, resetAt: Date.UTC(2025, 0, 16) })
    const lasting = createQuota({ name: 'tokens', store, limit: 5, ttlMs: 60_000 })
    expect(await lasting.consume('u')).toMatchObject({ allowed: true, resetAt: now + 60_000 })
  })

  it('refuses a quota whose own clock disagrees with it', () => {
    const store = createMemoryStore({ clock: () => Date.UTC(2025, 0, 15) })
    expect(() => createQuota({ name: 'api', store, limit: 5, clock: Date.now })).toThrow(/clock/)
  })

  it("an idempotent retry 20 ms later, across a minute boundary, replays with the earlier minute's reset time", async () => {
    let now = Date.UTC(2025, 2, 1, 10, 0, 59, 990)
    const store = createMemoryStore({ clock: () => now })
    const quota = createQuota({ name: 'calls', store, limit: 100, period: 'minute' })
    expect(await quota.consume('acct', 1, { idempotencyKey: 'req-1' })).toMatchObject({
      status: 'granted',
      resetAt: Date.UTC(2025, 2, 1, 10, 1),
    })
    now += 20
    expect(await quota.consume('acct', 1, { idempotencyKey: 'req-1' })).toMatchObject({
      status: 'replayed',
      usage: 1,
      resetAt: Date.UTC(2025, 2, 1, 10, 1),
    })
    expect((await quota.get('acct')).usage).toBe(0)
  })
})

describe('createMemoryStore options', () => {
  it('refuses an unknown key, naming it and the nearest option', () => {
    let thrown: unknown
    try {
      createMemoryStore({ onEvicted: () => {} } as never)
    } catch (error) {
      thrown = error
    }
    expect(thrown).toSatisfy(InvalidArgumentError.isInstance)
    expect((thrown as InvalidArgumentError).argument).toBe('onEvicted')
    expect((thrown as Error).message).toContain("'onEvict'")
  })
})

describe('expired entries are reclaimed', () => {
  it('5,000 one-off ids on a 1 s TTL: the entries stay within twice the live ones plus the purge floor', () => {
    let now = Date.UTC(2025, 2, 1)
    const entries = new Entries(
      100_000,
      () => now,
      () => {},
    )
    for (let i = 0; i < 5_000; i++) {
      entries.create(`id-${i}`, 1, 1_000)
      now += 10
    }
    // Live: the last 100 (1 s at 10 ms apart); without purging, all 5,000 would be held.
    expect(entries.size).toBeLessThanOrEqual(2 * 100 + 1024)
  })
})
