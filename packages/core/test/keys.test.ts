import { describe, expect, it } from 'vitest'
import { counterKey, encodeKeyPart, hashTagGroup, idempotencyKey, lockKey } from '../src/keys.js'

/** The hash tag Redis Cluster hashes: between the first `{` and the next `}` (if non-empty). */
function hashTag(key: string): string {
  const open = key.indexOf('{')
  const close = key.indexOf('}', open + 1)
  return open === -1 || close === -1 || close === open + 1 ? key : key.slice(open + 1, close)
}

describe('key building', () => {
  it('counter, lock and idempotency keys of one id share one hash tag, whatever the id holds', () => {
    for (const id of ['plain', 'a:b', '{abc', 'x{}y{z}', '}{', '%7B', '😀']) {
      const counter = counterKey('voucher', id)
      const tag = hashTag(counter)
      expect(hashTag(lockKey(counter))).toBe(tag)
      expect(hashTag(idempotencyKey(counter, 'consume', 'k}{'))).toBe(tag)
      expect(hashTag(counterKey('voucher', id, { period: 'day', startAt: 1_700_000_000_000 }))).toBe(tag)
      expect(tag).toBe(hashTagGroup('voucher', id).slice(1, -1))
    }
  })

  it('distinct (name, id) pairs never map to one key', () => {
    const pairs: Array<[string, string]> = [
      ['a', 'b:c'],
      ['a:b', 'c'],
      ['a', 'b%3Ac'],
      ['a%3A', 'b'],
      ['a', '{b}'],
      ['a', '%7Bb%7D'],
    ]
    const keys = pairs.map(([name, id]) => counterKey(name, id))
    expect(new Set(keys).size).toBe(pairs.length)
  })

  it('encodes only %, {, } and :', () => {
    expect(encodeKeyPart('a%b{c}d:e-f')).toBe('a%25b%7Bc%7Dd%3Ae-f')
  })
})
