import { createMemoryStore } from '@andromeda/memory'
import { describe, expect, it } from 'vitest'
import { createExportService, type ExportSink } from '../src/exports.js'

/**
 * Testing your own code that uses a quota: give it a fresh memory store per test (no Redis, no
 * shared state between tests) and, for periods and TTLs, a clock you move by hand. The store
 * and the engine take the same clock, so "tomorrow" is one assignment away.
 */
function setup(options: { failingSink?: boolean } = {}) {
  let now = Date.UTC(2026, 0, 15, 12, 0, 0)
  const clock = () => now
  const written: { team: string; rows: number }[] = []
  const sink: ExportSink = {
    async write(team, rows) {
      if (options.failingSink) throw new Error('object store unavailable')
      written.push({ team, rows })
    },
  }
  const service = createExportService({
    store: createMemoryStore({ clock }),
    sink,
    plan: (team) => (team.startsWith('pro-') ? 'pro' : 'free'),
    clock,
  })
  return { service, written, advance: (ms: number) => (now += ms) }
}

describe('export allowance', () => {
  it('a free team can export up to 1,000 rows a day, then is refused until midnight UTC', async () => {
    const { service, written } = setup()
    expect(await service.exportRows('acme', 600)).toEqual({ ok: true, remaining: 400 })
    expect(await service.exportRows('acme', 400)).toEqual({ ok: true, remaining: 0 })
    const refused = await service.exportRows('acme', 1)
    expect(refused).toEqual({ ok: false, retryAt: Date.UTC(2026, 0, 16) })
    expect(written).toHaveLength(2) // the refused export never reached the sink
  })

  it('a refused export changes nothing: a smaller one that fits still goes through', async () => {
    const { service } = setup()
    await service.exportRows('acme', 900)
    expect((await service.exportRows('acme', 200)).ok).toBe(false)
    expect(await service.exportRows('acme', 100)).toEqual({ ok: true, remaining: 0 })
  })

  it('the allowance comes back the next day (the clock is moved, nothing waits)', async () => {
    const { service, advance } = setup()
    await service.exportRows('acme', 1000)
    advance(12 * 3600_000) // midnight UTC
    expect(await service.exportRows('acme', 1000)).toEqual({ ok: true, remaining: 0 })
  })

  it('pro teams get 50,000 rows, and teams do not share an allowance', async () => {
    const { service } = setup()
    expect(await service.exportRows('pro-globex', 20_000)).toEqual({ ok: true, remaining: 30_000 })
    expect(await service.exportRows('acme', 1000)).toEqual({ ok: true, remaining: 0 })
  })

  it('rows of an export whose write failed are given back', async () => {
    const { service } = setup({ failingSink: true })
    await expect(service.exportRows('acme', 700)).rejects.toThrow('object store unavailable')
    expect((await service.quota.get('acme')).usage).toBe(0)
  })

  it('concurrent exports never exceed the allowance', async () => {
    const { service } = setup()
    const results = await Promise.all(Array.from({ length: 50 }, () => service.exportRows('acme', 30)))
    expect(results.filter((r) => r.ok)).toHaveLength(33) // 33 x 30 = 990 <= 1000
    expect((await service.quota.get('acme')).usage).toBe(990)
  })
})
