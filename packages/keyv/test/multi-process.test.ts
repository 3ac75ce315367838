import { rmSync } from 'node:fs'
import { counterKey } from '@andromeda/core'
import KeyvRedis from '@keyv/redis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFixture, runChildren } from './children.js'
import { deleteNamespace, REDIS_URL, randomNamespace, redisAnswers, requireService } from './helpers.js'

const available = requireService(await redisAnswers(), 'Redis on 127.0.0.1:6379')

describe.runIf(available)('@keyv/redis across processes', () => {
  let outDir: string
  const namespace = randomNamespace('mp')

  beforeAll(async () => {
    outDir = await bundleFixture('consumer')
  })
  afterAll(async () => {
    if (outDir) rmSync(outDir, { recursive: true, force: true })
    const admin = new KeyvRedis(REDIS_URL)
    await deleteNamespace(admin, namespace)
    await admin.disconnect()
  })

  it('2 processes x 500 concurrent consumes on limit 600 grant exactly 600', async () => {
    const env = { REDIS_URL, NAMESPACE: namespace, QUOTA: 'voucher', COUNT: '500', LIMIT: '600' }
    const results = await runChildren<{ allowed: number; refused: number; errors: number; atomic: string }>(
      outDir,
      'consumer',
      [env, env],
    )
    const total = results.reduce(
      (sum, r) => ({
        allowed: sum.allowed + r.allowed,
        refused: sum.refused + r.refused,
        errors: sum.errors + r.errors,
      }),
      {
        allowed: 0,
        refused: 0,
        errors: 0,
      },
    )
    console.info(`2 x 500 consumes on limit 600: ${JSON.stringify(results)}`)
    expect(results.every((r) => r.atomic === 'global')).toBe(true)
    expect(total).toEqual({ allowed: 600, refused: 400, errors: 0 })
    // The counter is a raw integer key under the Keyv namespace, not Keyv's JSON wrapper.
    const admin = new KeyvRedis(REDIS_URL)
    const client = await admin.getClient()
    expect(await client.get(`${namespace}::${counterKey('voucher', 'flash-sale')}`)).toBe('600')
    await admin.disconnect()
  }, 60_000)
})
