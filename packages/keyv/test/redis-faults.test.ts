import { createQuota, StoreError } from '@andromeda/core'
import { freePort, hasRedisServerBinary, type OwnRedis, startRedis } from '@andromeda/test-utils'
import KeyvRedis from '@keyv/redis'
import Keyv from 'keyv'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createKeyvStore } from '../src/index.js'
import { randomNamespace, requireService } from './helpers.js'

const available = requireService(await hasRedisServerBinary(), 'redis-server on PATH')

const TIMEOUT_MS = 300
/** What "within a bound" means here: the timeout plus scheduling slack. */
const BOUND_MS = TIMEOUT_MS + 700

async function timed(fn: () => Promise<unknown>) {
  const started = Date.now()
  const error = await fn().then(
    () => undefined,
    (e: unknown) => e,
  )
  return { error, ms: Date.now() - started }
}

describe.runIf(available)('@keyv/redis with Redis unreachable', () => {
  it('consume and refund reject with StoreError within a bound when nothing listens', async () => {
    const port = await freePort()
    const adapter = new KeyvRedis(`redis://127.0.0.1:${port}`)
    const keyv = new Keyv({ store: adapter, namespace: randomNamespace('down') })
    const store = createKeyvStore({ keyv, commandTimeoutMs: TIMEOUT_MS })
    const quota = createQuota({ name: 'q', store, limit: 10 })
    for (const call of [() => quota.consume('a'), () => quota.refund('a'), () => quota.consume('a')]) {
      const { error, ms } = await timed(call)
      console.info(`unreachable: rejected after ${ms} ms with ${(error as Error)?.name}`)
      expect(StoreError.isInstance(error)).toBe(true)
      expect(ms).toBeLessThan(BOUND_MS)
    }
    await store.close?.()
    await adapter.disconnect().catch(() => {})
  })

  describe('when the server stops after the client connected', () => {
    let server: OwnRedis
    beforeAll(async () => {
      server = await startRedis()
    })
    afterAll(() => server.destroy())

    it('consume and refund reject with StoreError within a bound and nothing is reported as saved', async () => {
      const adapter = new KeyvRedis(`redis://127.0.0.1:${server.port}`)
      adapter.on('error', () => {})
      const keyv = new Keyv({ store: adapter, namespace: randomNamespace('stop') })
      const store = createKeyvStore({ keyv, commandTimeoutMs: TIMEOUT_MS })
      // No engine retries: the bound checked is the store's, for each call sent.
      const quota = createQuota({ name: 'q', store, limit: 10, retry: false })
      expect(await quota.consume('a', 2)).toMatchObject({ allowed: true, usage: 2 })

      await server.kill()

      const outcomes = []
      for (const call of [
        () => quota.consume('a'),
        () => quota.refund('a'),
        () => quota.consume('a', 1, { idempotencyKey: 'k1' }),
      ]) {
        outcomes.push(await timed(call))
      }
      console.info(`stopped server: rejected after ${outcomes.map((o) => o.ms).join(', ')} ms`)
      for (const { error, ms } of outcomes) {
        expect(StoreError.isInstance(error)).toBe(true)
        expect(ms).toBeLessThan(BOUND_MS)
      }

      // Back up (empty, no persistence): nothing sent while it was down lands late.
      await server.start()
      await new Promise((resolve) => setTimeout(resolve, 1_500))
      expect((await quota.get('a')).usage).toBe(0)
      await store.close?.()
      await adapter.disconnect().catch(() => {})
    }, 20_000)
  })
})
