import { describe, expect, it } from 'vitest'
import { InvalidArgumentError } from '../src/errors.js'
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
      expect(hashTag(counterKey('voucher', id, { period: 'day', startAt: Date.UTC(2023, 10, 14) }))).toBe(tag)
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

  it('counterKey and hashTagGroup refuse, naming the argument, what names no counter a quota keeps', () => {
    const argumentOf = (build: () => unknown) => {
      try {
        build()
      } catch (error) {
        return InvalidArgumentError.isInstance(error) ? error.argument : error
      }
      return 'accepted'
    }
    const day = Date.UTC(2026, 0, 31)
    expect(argumentOf(() => counterKey('', 'a'))).toBe('quota')
    expect(argumentOf(() => counterKey('q', 7 as never))).toBe('id')
    expect(argumentOf(() => counterKey('q', '\uD800'))).toBe('id')
    expect(argumentOf(() => hashTagGroup(undefined as never, 'a'))).toBe('quota')
    expect(argumentOf(() => hashTagGroup('q', ''))).toBe('id')
    expect(argumentOf(() => counterKey('q', 'a', 'day' as never))).toBe('window')
    expect(argumentOf(() => counterKey('q', 'a', { period: 'daily' as never, startAt: day }))).toBe('window.period')
    for (const startAt of [day + 3_600_000, -86_400_000, 1.5, Number.NaN, String(day) as never])
      expect(argumentOf(() => counterKey('q', 'a', { period: 'day', startAt }))).toBe('window.startAt')
    // A Monday and the first of a month are window starts; a Saturday is not a week's.
    expect(argumentOf(() => counterKey('q', 'a', { period: 'week', startAt: Date.UTC(2026, 0, 26) }))).toBe('accepted')
    expect(argumentOf(() => counterKey('q', 'a', { period: 'week', startAt: day }))).toBe('window.startAt')
    expect(argumentOf(() => counterKey('q', 'a', { period: 'month', startAt: Date.UTC(2026, 0, 1) }))).toBe('accepted')
    // The week a clock at 0 counts in started on Monday 1969-12-29; the one before holds no instant >= 0.
    expect(argumentOf(() => counterKey('q', 'a', { period: 'week', startAt: Date.UTC(1969, 11, 29) }))).toBe('accepted')
    expect(argumentOf(() => counterKey('q', 'a', { period: 'week', startAt: Date.UTC(1969, 11, 22) }))).toBe(
      'window.startAt',
    )
    expect(counterKey('q', 'a', { period: 'day', startAt: day })).toBe(`{q:a}:usage:day:${day}`)
  })
})
