import { describe, expect, it, vi } from 'vitest'
import { createQuota, createUsageSync, InvalidArgumentError } from '../src/index.js'
import { untouchableStore } from './stub-store.js'

/** A quota whose store answers get() from a plain map (reads only; no atomicity involved). */
function readableQuota(values: Map<string, number>, ttlMs?: number) {
  const store = untouchableStore({
    get: async (key) => ({ value: values.get(key.slice(key.indexOf(':') + 1, key.indexOf('}'))) ?? 0 }),
  })
  return createQuota({ name: 'q', store, limit: 100, ...(ttlMs === undefined ? {} : { ttlMs }) })
}

describe('createUsageSync', () => {
  it('hands each id usage to persist on every interval, and stop() flushes once more', async () => {
    vi.useFakeTimers()
    try {
      const usage = new Map([
        ['a', 1],
        ['b', 2],
      ])
      const saved: Array<[string, number]> = []
      const sync = createUsageSync({
        quota: readableQuota(usage),
        ids: () => usage.keys(),
        persist: (id, u) => saved.push([id, u]),
        intervalMs: 1000,
      })
      sync.start()
      await vi.advanceTimersByTimeAsync(1000)
      expect(saved).toEqual([
        ['a', 1],
        ['b', 2],
      ])
      usage.set('a', 7)
      await sync.stop()
      expect(saved.slice(2)).toEqual([
        ['a', 7],
        ['b', 2],
      ])
      await vi.advanceTimersByTimeAsync(5000)
      expect(saved).toHaveLength(4)
    } finally {
      vi.useRealTimers()
    }
  })

  it('never runs two syncs at once, even when persist is slower than the interval', async () => {
    vi.useFakeTimers()
    try {
      let active = 0
      let maxActive = 0
      const sync = createUsageSync({
        quota: readableQuota(new Map([['a', 1]])),
        ids: () => ['a'],
        persist: async () => {
          active++
          maxActive = Math.max(maxActive, active)
          await new Promise((resolve) => setTimeout(resolve, 2500))
          active--
        },
        intervalMs: 1000,
      })
      sync.start()
      await vi.advanceTimersByTimeAsync(10_000)
      const stopping = sync.stop()
      await vi.advanceTimersByTimeAsync(10_000)
      await stopping
      expect(maxActive).toBe(1)
    } finally {
      vi.useRealTimers()
    }
  })

  it('reports a failing persist to onError and goes on with the next id', async () => {
    const errors: Array<string | undefined> = []
    const saved: string[] = []
    const sync = createUsageSync({
      quota: readableQuota(new Map()),
      ids: () => ['bad', 'good'],
      persist: (id) => {
        if (id === 'bad') throw new Error('db down')
        saved.push(id)
      },
      onError: (_error, id) => errors.push(id),
      intervalMs: 1000,
    })
    await sync.flush()
    expect(errors).toEqual(['bad'])
    expect(saved).toEqual(['good'])
  })

  it('warns when the quota ttlMs is shorter than the interval', () => {
    const emit = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    createUsageSync({ quota: readableQuota(new Map(), 500), ids: () => [], persist: () => {}, intervalMs: 1000 })
    expect(String(emit.mock.calls[0]?.[0])).toMatch(/shorter than the sync interval/)
    emit.mockRestore()
  })

  it('rejects an interval past 2^31 - 1 ms', () => {
    expect(() =>
      createUsageSync({ quota: readableQuota(new Map()), ids: () => [], persist: () => {}, intervalMs: 2 ** 31 }),
    ).toThrow(InvalidArgumentError)
  })
})
