/**
 * A request whose process dies in the middle of the model call: the service runs as a child
 * process on the shared Redis and is SIGKILLed while its model call is pending.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { createRedisStore } from '@andromeda/redis'
import { deletePrefix, randomPrefix, redisAnswers, requireService, SHARED_REDIS } from '@andromeda/test-utils'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { createTokenQuota, estimateTokens } from '../src/app.js'

const available = requireService(await redisAnswers(SHARED_REDIS.port), `Redis on 127.0.0.1:${SHARED_REDIS.port}`)
const root = fileURLToPath(new URL('..', import.meta.url))
const HOLD_MS = 3000

describe.runIf(available)('a request whose process is SIGKILLed during the model call', () => {
  const prefix = randomPrefix('token-budget')
  const redis = new Redis(SHARED_REDIS.port)
  const store = createRedisStore({ client: redis, prefix })
  // The service's quota, as a second process sees it: the same name, store and prefix.
  const tokens = createTokenQuota({ store, dailyTokens: { 'key-z': 10_000 }, holdMs: HOLD_MS })
  let child: ChildProcess | undefined

  afterAll(async () => {
    child?.kill('SIGKILL')
    await deletePrefix(redis, prefix)
    await store.close?.()
    await redis.quit()
  })

  it('keeps its estimate held after the process is gone, and the estimate comes back by itself after holdMs', async () => {
    child = spawn(process.execPath, ['--conditions=@andromeda/source', '--import', 'tsx', 'src/server.ts'], {
      cwd: root,
      env: {
        ...process.env,
        PORT: '0',
        REDIS_URL: `redis://127.0.0.1:${SHARED_REDIS.port}`,
        KEY_PREFIX: prefix,
        API_KEYS: 'key-z=10000',
        HOLD_MS: String(HOLD_MS),
        MODEL_TIMEOUT_MS: String(HOLD_MS - 500),
        MODEL_DELAY_MS: '600000', // the model never answers in time: the process dies first
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const exited = once(child, 'exit')
    const [line] = (await Promise.race([
      once(createInterface({ input: child.stdout! }), 'line'),
      exited.then(() => ['exited']),
    ])) as [string]
    expect(line).toMatch(/^listening http:/)
    const url = line.slice('listening '.length)

    const prompt = 'Write a haiku about quotas.'
    const estimate = estimateTokens(prompt, 300)
    const request = fetch(`${url}/v1/complete`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': 'key-z' },
      body: JSON.stringify({ prompt, maxTokens: 300 }),
    }).then(
      (response) => response.status,
      () => 'no answer',
    )
    // The request holds its estimate: the model call is under way.
    const deadline = Date.now() + 10_000
    while ((await tokens.get('key-z')).usage !== estimate) {
      if (Date.now() > deadline) throw new Error('the request never held its estimate')
      await sleep(5)
    }
    child.kill('SIGKILL')
    await exited
    const killedAt = Date.now()
    expect(await request).toBe('no answer')

    // Nobody is left to release the hold: it stays counted until it expires.
    expect((await tokens.get('key-z')).usage).toBe(estimate)
    await sleep(Math.max(HOLD_MS - (Date.now() - killedAt), 0) + 100)
    const after = await tokens.get('key-z')
    expect(after.usage).toBe(0)
    expect(after.remaining).toBe(10_000)
  })
})
