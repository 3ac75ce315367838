import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import { requireService } from './helpers.js'
import { answers, type Dialect, SERVICE, sqlFixture } from './sql-fixture.js'

const available: Record<Dialect, boolean> = {
  postgres: requireService(await answers('postgres'), SERVICE.postgres),
  mysql: requireService(await answers('mysql'), SERVICE.mysql),
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.each(['postgres', 'mysql'] as const)('holds on %s under concurrency', (dialect) => {
  const fixture = sqlFixture(dialect)
  afterAll(() => fixture.drop())

  // The short holds last 2 s, longer than the burst takes: none may come back during it.
  it.runIf(available[dialect])(
    '100 concurrent holds on limit 40 hold exactly 40; abandoned ones come back; settled ones stay',
    async () => {
      const store = fixture.store()
      const key = `{h${randomBytes(6).toString('hex')}}:usage`
      const holds = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          store.apply([
            {
              key,
              delta: 1,
              max: 40,
              ifMissing: 'create',
              hold: { id: `h${i}`, holdMs: i % 2 === 0 ? 60_000 : 2_000 },
            },
          ]),
        ),
      )
      const held = holds.flatMap((result, i) => (result.ok ? [i] : []))
      expect(held).toHaveLength(40)
      expect(await store.get(key)).toMatchObject({ value: 40 })
      // Settle the long holds concurrently, keeping every unit; let the short ones expire.
      const long = held.filter((i) => i % 2 === 0)
      const settled = await Promise.all(
        long.map((i) => store.apply([{ key, delta: 0, ifMissing: 'create', settle: { id: `h${i}`, keep: 1 } }])),
      )
      expect(settled.every((result) => result.ok)).toBe(true)
      await sleep(2_200)
      // The abandoned holds gave their units back; the settled ones are kept for good.
      expect(await store.get(key)).toMatchObject({ value: long.length })
      const refill = await Promise.all(
        Array.from({ length: 60 }, () => store.apply([{ key, delta: 1, max: 40, ifMissing: 'create' }])),
      )
      expect(refill.filter((result) => result.ok)).toHaveLength(40 - long.length)
      expect(await store.get(key)).toMatchObject({ value: 40 })
    },
    30_000,
  )
})
