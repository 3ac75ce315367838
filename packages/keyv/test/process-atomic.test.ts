import { consumeAll, counterKey, createQuota, InvalidArgumentError } from '@andromeda/core'
import { lockKey } from '@andromeda/core/store'
import Keyv from 'keyv'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MAX_TOKEN_LENGTH } from '../src/args.js'
import { createKeyvStore } from '../src/index.js'
import { KeyedMutex } from '../src/mutex.js'
import { randomNamespace } from './helpers.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A Keyv adapter kept in this process but not recognisable as one (so it reads as shared). */
function plainAdapter() {
  const map = new Map<string, unknown>()
  return {
    get: async (key: string) => map.get(key),
    set: async (key: string, value: unknown) => {
      map.set(key, value)
      return true
    },
    delete: async (key: string) => map.delete(key),
    clear: async () => map.clear(),
  }
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('keyv process-atomic path (Map backend)', () => {
  it(`takes the lock tokens the SQL path takes: up to ${MAX_TOKEN_LENGTH} characters, so a store can move between them`, async () => {
    const store = createKeyvStore({ keyv: new Keyv() })
    const tooLong = 'z'.repeat(MAX_TOKEN_LENGTH + 1)
    for (const [argument, call] of [
      ['token', () => store.acquireLock(lockKey('k'), tooLong, 10_000)],
      ['lockToken', () => store.seed('k', 3, undefined, tooLong)],
      ['token', () => store.releaseLock(lockKey('k'), tooLong)],
    ] as const) {
      await expect(call()).rejects.toSatisfy(
        (error: unknown) => InvalidArgumentError.isInstance(error) && error.argument === argument,
      )
    }
    expect(await store.get('k')).toBeUndefined()
    const longest = 'y'.repeat(MAX_TOKEN_LENGTH)
    expect(await store.acquireLock(lockKey('k'), longest, 10_000)).toBe(true)
    expect(await store.seed('k', 3, undefined, longest)).toBe(true)
    expect(await store.releaseLock(lockKey('k'), longest)).toBe(true)
  })

  it('200 parallel consumes on limit 50 in one process grant exactly 50 (the per-key mutex)', async () => {
    const store = createKeyvStore({ keyv: new Keyv() })
    const quota = createQuota({ name: 'flash', store, limit: 50 })
    const results = await Promise.all(Array.from({ length: 200 }, () => quota.consume('item')))
    expect(results.filter((r) => r.allowed)).toHaveLength(50)
    expect((await quota.get('item')).usage).toBe(50)
  })

  it('consumeAll over two keys never deadlocks against consumeAll over the same keys in reverse order', async () => {
    const store = createKeyvStore({ keyv: new Keyv() })
    const a = createQuota({ name: 'a', store, limit: 150 })
    const b = createQuota({ name: 'b', store, limit: 150 })
    const forward = Array.from({ length: 100 }, () =>
      consumeAll([
        { quota: a, id: 'x' },
        { quota: b, id: 'y' },
      ]),
    )
    const reverse = Array.from({ length: 100 }, () =>
      consumeAll([
        { quota: b, id: 'y' },
        { quota: a, id: 'x' },
      ]),
    )
    const all = Promise.all([...forward, ...reverse])
    const outcome = await Promise.race([all, sleep(10_000).then(() => 'deadlock' as const)])
    expect(outcome).not.toBe('deadlock')
    const results = outcome as Awaited<typeof all>
    expect(results.filter((r) => r.allowed)).toHaveLength(150)
    expect((await a.get('x')).usage).toBe(150)
    expect((await b.get('y')).usage).toBe(150)
  })

  it('the same through the saga path (one key at a time) completes and stays all or nothing', async () => {
    const inner = createKeyvStore({ keyv: new Keyv() })
    const store = {
      ...inner,
      apply: inner.apply,
      capabilities: { ...inner.capabilities, canApplyTogether: () => false },
    }
    const a = createQuota({ name: 'a', store, limit: 30 })
    const b = createQuota({ name: 'b', store, limit: 40 })
    const calls = Array.from({ length: 60 }, (_, i) =>
      consumeAll(
        i % 2 === 0
          ? [
              { quota: a, id: 'x' },
              { quota: b, id: 'y' },
            ]
          : [
              { quota: b, id: 'y' },
              { quota: a, id: 'x' },
            ],
      ),
    )
    const results = await Promise.all(calls)
    // A saga is not serialisable (a call can be refused by units another call later gives
    // back), so fewer than 30 may be granted; but every granted call counted on both quotas.
    const granted = results.filter((r) => r.allowed).length
    expect(granted).toBeGreaterThan(0)
    expect(granted).toBeLessThanOrEqual(30)
    expect((await a.get('x')).usage).toBe(granted)
    expect((await b.get('y')).usage).toBe(granted)
  })

  it('capabilities say atomic within the process; the Map backend is not shared', () => {
    const store = createKeyvStore({ keyv: new Keyv() })
    expect(store.capabilities.atomic).toBe('process')
    expect(store.capabilities.shared).toBe(false)
    expect(store.capabilities.canApplyTogether(['a', 'b'])).toBe(true)
  })

  it('any other adapter is taken as shared, unless told otherwise', () => {
    expect(createKeyvStore({ keyv: new Keyv({ store: plainAdapter() }) }).capabilities.shared).toBe(true)
    expect(createKeyvStore({ keyv: new Keyv({ store: plainAdapter() }), shared: false }).capabilities.shared).toBe(
      false,
    )
  })

  it('the engine warns once about a shared store that is only process-atomic, and never about the Map', async () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    const mapStore = createKeyvStore({ keyv: new Keyv() })
    createQuota({ name: 'm', store: mapStore, limit: 1 })
    const sharedStore = createKeyvStore({ keyv: new Keyv({ store: plainAdapter() }) })
    createQuota({ name: 's1', store: sharedStore, limit: 1 })
    createQuota({ name: 's2', store: sharedStore, limit: 1 })
    const codes = warn.mock.calls.map((call) => (call[1] as { code?: string } | undefined)?.code)
    expect(codes.filter((code) => code === 'ANDROMEDA_PROCESS_ATOMIC_STORE')).toHaveLength(1)
  })

  it('counters are small records under the Keyv namespace, readable through Keyv itself', async () => {
    const keyv = new Keyv({ namespace: randomNamespace('ns') })
    const store = createKeyvStore({ keyv })
    const quota = createQuota({ name: 'voucher', store, limit: 10, ttlMs: 60_000 })
    await quota.consume('v1', 3)
    const record = await keyv.get(counterKey('voucher', 'v1', 'ttl'))
    expect(record).toMatchObject({ type: 'counter', value: 3 })
    expect(record.expiresAt).toBeGreaterThan(Date.now())
  })

  it('expiry is checked on read against the injected clock', async () => {
    let now = 1_000_000
    const store = createKeyvStore({ keyv: new Keyv(), clock: () => now })
    await store.apply([{ key: 'k', delta: 2, max: 10, ttlMs: 5_000, ifMissing: 'create' }])
    expect(await store.get('k')).toEqual({ value: 2, ttlMs: 5_000 })
    now += 4_000
    expect(await store.get('k')).toEqual({ value: 2, ttlMs: 1_000 })
    now += 1_000
    expect(await store.get('k')).toBeUndefined()
    expect(await store.apply([{ key: 'k', delta: -1, min: 0, ifMissing: 'report' }])).toMatchObject({
      ok: false,
      reason: 'missing',
    })
  })

  it('keys longer than maxKeyLength are stored under a bounded key and stay distinct', async () => {
    const seen: string[] = []
    const adapter = plainAdapter()
    const set = adapter.set
    adapter.set = async (key, value) => {
      seen.push(key)
      return set(key, value)
    }
    const store = createKeyvStore({ keyv: new Keyv({ store: adapter }), maxKeyLength: 255 })
    const long = `{t}:${'a'.repeat(10_000)}`
    const longer = `${long}a`
    await store.apply([{ key: long, delta: 1, max: 10, ifMissing: 'create' }])
    await store.apply([{ key: longer, delta: 2, max: 10, ifMissing: 'create' }])
    expect(seen.every((key) => key.length <= 255)).toBe(true)
    expect(new Set(seen).size).toBe(2)
    expect((await store.get(long))?.value).toBe(1)
    expect((await store.get(longer))?.value).toBe(2)
  })
})

describe('KeyedMutex', () => {
  it('callers taking two keys in opposite orders all get through', async () => {
    const mutex = new KeyedMutex()
    let inside = 0
    let most = 0
    const run = async (keys: string[]) => {
      const release = await mutex.lock(keys, 5_000, () => new Error('timeout'))
      inside++
      most = Math.max(most, inside)
      await sleep(1)
      inside--
      release()
    }
    await Promise.all(Array.from({ length: 50 }, (_, i) => run(i % 2 ? ['a', 'b'] : ['b', 'a'])))
    expect(most).toBe(1)
    expect(mutex.size).toBe(0)
  })

  it('a caller that waits too long rejects, and the key is passed on once its holder releases', async () => {
    const mutex = new KeyedMutex()
    const release = await mutex.lock(['k'], 1_000, () => new Error('timeout'))
    await expect(mutex.lock(['k'], 20, () => new Error('timeout'))).rejects.toThrow('timeout')
    const third = mutex.lock(['k'], 1_000, () => new Error('timeout'))
    release()
    const releaseThird = await third
    releaseThird()
    releaseThird()
    await sleep(0)
    expect(mutex.size).toBe(0)
  })
})
