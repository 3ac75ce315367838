import { redisAnswers, requireService } from '@andromeda/test-utils'
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'

const available = requireService(await redisAnswers(6379), 'Redis on 127.0.0.1:6379')

// A logical database of its own, so the key count is this test's alone (the other suites use
// database 0 and may run at the same time).
const DATABASE = 9
process.env.REDIS_URL = `redis://127.0.0.1:6379/${DATABASE}`
process.env.BENCH_FROM_SOURCE = '1'

describe.runIf(available)('pnpm bench', () => {
  it('leaves no key behind in the Redis it measured (Redis path, commands per consume, HTTP path, footprint)', async () => {
    const admin = new Redis({ host: '127.0.0.1', port: 6379, db: DATABASE })
    try {
      const before = await admin.dbsize()
      const { benchRedis, commandsPerConsume, leftoverKeys } = await import('../src/redis.js')
      const { benchHttp } = await import('../src/http.js')
      const { redisBytesPerCounter } = await import('../src/footprint.js')
      const results = await benchRedis({ rounds: 1, total: 200, quick: true })
      expect(results.length).toBeGreaterThan(0)
      expect((await commandsPerConsume(50)).length).toBeGreaterThan(0)
      const http = await benchHttp({ rounds: 1, durationSeconds: 1, connections: 4 })
      expect(http.every((f) => f.non2xx === 0)).toBe(true)
      expect(await redisBytesPerCounter()).toBeGreaterThan(0)
      expect(await leftoverKeys()).toBe(0)
      expect(await admin.dbsize()).toBe(before)
    } finally {
      admin.disconnect()
    }
  })
})
