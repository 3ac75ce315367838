import { fork } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { counterKey } from '@andromeda/core'
import KeyvRedis from '@keyv/redis'
import { build } from 'tsup'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deleteNamespace, REDIS_URL, randomNamespace, redisAnswers, requireService } from './helpers.js'

const available = requireService(await redisAnswers(), 'Redis on 127.0.0.1:6379')
const here = fileURLToPath(new URL('.', import.meta.url))

/**
 * The children run plain Node on this package's source: beforeAll bundles
 * test/fixtures/consumer.ts with tsup into one self-contained ESM file in a temporary directory
 * (workspace packages through their `@andromeda/source` export condition, every dependency
 * inlined, `require` provided for the CommonJS ones), so no build of any package is needed.
 */
async function bundleConsumer(): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), 'andromeda-keyv-'))
  await build({
    entry: { consumer: join(here, 'fixtures', 'consumer.ts') },
    outDir,
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    silent: true,
    config: false,
    dts: false,
    noExternal: [/.*/],
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
    esbuildOptions(options) {
      options.conditions = ['@andromeda/source']
    },
  })
  return outDir
}

describe.runIf(available)('@keyv/redis across processes', () => {
  let outDir: string
  const namespace = randomNamespace('mp')

  beforeAll(async () => {
    outDir = await bundleConsumer()
  })
  afterAll(async () => {
    if (outDir) rmSync(outDir, { recursive: true, force: true })
    const admin = new KeyvRedis(REDIS_URL)
    await deleteNamespace(admin, namespace)
    await admin.disconnect()
  })

  it('2 processes x 500 concurrent consumes on limit 600 grant exactly 600', async () => {
    const env = { ...process.env, REDIS_URL, NAMESPACE: namespace, QUOTA: 'voucher', COUNT: '500', LIMIT: '600' }
    const children = [0, 1].map(() => fork(join(outDir, 'consumer.js'), { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }))
    const exited = children.map(
      (child) => new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`a child exited with ${code} before reporting`)))),
    )
    const ready = children.map((child, i) => Promise.race([new Promise<void>((resolve) => child.once('message', () => resolve())), exited[i]!]))
    await Promise.all(ready)
    const tallies = children.map(
      (child) =>
        Promise.race([
          new Promise<{ allowed: number; refused: number; errors: number; atomic: string }>((resolve) => {
            child.once('message', (message) => resolve(message as never))
          }),
          exited[children.indexOf(child)]!,
        ]),
    )
    for (const child of children) child.send('go')
    const results = await Promise.all(tallies)
    const total = results.reduce((sum, r) => ({ allowed: sum.allowed + r.allowed, refused: sum.refused + r.refused, errors: sum.errors + r.errors }), {
      allowed: 0,
      refused: 0,
      errors: 0,
    })
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
