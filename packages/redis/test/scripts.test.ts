import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { SCRIPTS } from '../src/scripts/index.js'
import { canConnect, deleteKeys, randomPrefix, requireService, SHARED_REDIS } from './helpers.js'

const available = requireService(await canConnect(SHARED_REDIS.port), `Redis on 127.0.0.1:${SHARED_REDIS.port}`)

/** One op on one counter, with the state it meets. */
interface Case {
  existing: number | undefined
  existingTtlMs: number | undefined
  delta: number
  bound: string
  ttlMs: string
  ifMissing: 'c' | 'r'
  record: 'none' | 'new' | 'present'
  clear: boolean
  /** A load of the counter holds its loader lock (a give-back to the missing counter deletes it). */
  loading: boolean
}

function randomCase(random: () => number): Case {
  const pick = <T>(values: T[]) => values[Math.floor(random() * values.length)]!
  const delta = pick([-3, -1, 0, 1, 2, 5])
  return {
    existing: pick([undefined, 0, 2, 5]),
    existingTtlMs: pick([undefined, 60_000]),
    delta,
    bound: delta > 0 ? pick(['', '3', '5']) : delta < 0 ? pick(['', '0', '2']) : '',
    ttlMs: pick(['', '30000']),
    ifMissing: pick(['c', 'r'] as const),
    record: pick(['none', 'new', 'present'] as const),
    clear: random() < 0.3,
    loading: random() < 0.5,
  }
}

/** The batch script's answer for one call, in the apply script's words. */
function asApplyReply(reply: string[]): string[] {
  const [code, a, b] = reply.slice(1)
  if (code === 'o') return ['ok', a!, b!]
  if (code === 'r') return ['replay', a!, b!]
  const reason = { l: 'limit', f: 'floor', m: 'missing' }[code as 'l' | 'f' | 'm']
  return ['refused', '0', reason, a!, b!]
}

describe.runIf(available)('the batch script and the apply script agree on a call on one counter', () => {
  const prefix = randomPrefix('scripts')
  let client: Redis
  beforeAll(() => {
    client = new Redis(SHARED_REDIS.port)
  })
  afterAll(async () => {
    await deleteKeys(client, prefix)
    client.disconnect()
  })

  const seed = randomBytes(4).readUInt32LE(0)
  it(`same answer and same keys written, over 300 random calls (seed ${seed})`, async () => {
    let state = seed || 1
    const random = () => {
      state ^= state << 13
      state ^= state >>> 17
      state ^= state << 5
      return (state >>> 0) / 2 ** 32
    }
    for (let i = 0; i < 300; i++) {
      const c = randomCase(random)
      const keysOf = (side: string) => {
        const group = `${prefix}${side}:${i}:{g}`
        return {
          counter: `${group}:usage`,
          record: `${group}:idem`,
          clear: `${group}:old`,
          lock: `${group}:usage:lock`,
        }
      }
      const sides = { batch: keysOf('batch'), apply: keysOf('apply') }
      for (const keys of Object.values(sides)) {
        if (c.existing !== undefined) {
          if (c.existingTtlMs === undefined) await client.set(keys.counter, String(c.existing))
          else await client.set(keys.counter, String(c.existing), 'PX', c.existingTtlMs)
        }
        if (c.record === 'present') await client.set(keys.record, '1000|7,', 'PX', 60_000)
        await client.set(keys.clear, 'x')
        if (c.loading) await client.set(keys.lock, 'load', 'PX', 60_000)
      }
      const keyList = (keys: { counter: string; record: string; clear: string }) => [
        keys.counter,
        ...(c.record === 'none' ? [] : [keys.record]),
        ...(c.clear ? [keys.clear] : []),
      ]
      const recordTtl = c.record === 'none' ? '' : '60000'
      const shape = `a${c.record === 'none' ? '' : 'r'}${c.clear ? 'c' : ''}`
      const batchKeys = keyList(sides.batch)
      const applyKeys = keyList(sides.apply)
      const [batchReply, applyReply] = (await Promise.all([
        client.eval(
          SCRIPTS.batch.lua,
          batchKeys.length,
          ...batchKeys,
          '0',
          '1',
          shape,
          String(c.delta),
          c.bound,
          c.ttlMs,
          c.ifMissing,
          recordTtl,
        ),
        client.eval(
          SCRIPTS.apply.lua,
          applyKeys.length,
          ...applyKeys,
          '0',
          '1',
          recordTtl,
          String(c.delta),
          c.bound,
          c.ttlMs,
          c.ifMissing,
          '',
          '',
          '',
        ),
      ])) as [string[], string[]]
      const what = JSON.stringify(c)
      // A replay's age is measured in each script's own instant, and a lifetime from each
      // side's own setup: compare those within a second, the rest exactly.
      const answer = (reply: string[]) =>
        reply[0] === 'replay'
          ? reply.slice(0, 2)
          : reply.map((part, j) => (j === reply.length - 1 && part !== '' ? 'ttl' : part))
      const ttl = (reply: string[]) => (reply[0] === 'replay' ? 0 : Number(reply.at(-1) || 0))
      expect(answer(asApplyReply(batchReply)), what).toEqual(answer(applyReply))
      expect(Math.abs(ttl(asApplyReply(batchReply)) - ttl(applyReply)), what).toBeLessThan(1000)
      for (const part of ['counter', 'record', 'clear', 'lock'] as const) {
        const [mine, theirs] = await Promise.all([client.get(sides.batch[part]), client.get(sides.apply[part])])
        // A record holds its write time and a lifetime measured from each side's setup.
        const stable = (raw: string | null) => raw?.replace(/^\d+\|/, '').replace(/,\d+$/, ',ttl')
        expect(stable(mine), `${part} of ${what}`).toEqual(stable(theirs))
        const [myTtl, theirTtl] = await Promise.all([client.pttl(sides.batch[part]), client.pttl(sides.apply[part])])
        expect(Math.sign(myTtl), `${part} lifetime of ${what}`).toBe(Math.sign(theirTtl))
        expect(Math.abs(myTtl - theirTtl), `${part} lifetime of ${what}`).toBeLessThan(1000)
      }
    }
  })
})
