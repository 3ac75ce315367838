import { describe, expect, it } from 'vitest'
import { parseCounterValue, parseRefusal, parseTtlMs, StoreError } from '../src/store/index.js'

describe('reply readers of server-side code', () => {
  it('read a counter value only when it is a safe integer, naming the source otherwise', () => {
    expect(parseCounterValue('-42', 'Redis')).toBe(-42)
    expect(parseCounterValue('9007199254740991', 'Redis')).toBe(Number.MAX_SAFE_INTEGER)
    for (const raw of ['4.2', '9007199254740992', '1e3', '', ' 1', undefined]) {
      const error = (() => {
        try {
          return parseCounterValue(raw, 'the database')
        } catch (e) {
          return e
        }
      })()
      expect(StoreError.isInstance(error)).toBe(true)
      expect(error).toMatchObject({ retryable: false })
      expect((error as Error).message).toBe(
        `the database holds a counter value that is not a safe integer: ${JSON.stringify(raw)}`,
      )
    }
  })

  it('read a refusal: index, reason, and each op value and lifetime, with "" as missing or none', () => {
    expect(parseRefusal(['refused', '1', 'floor', '5', '', '', '1200'], 2, 'Redis')).toEqual({
      ok: false,
      index: 1,
      reason: 'floor',
      values: [5, undefined],
      ttlMs: [undefined, 1200],
    })
  })

  it('read "-0" as 0, not as negative zero', () => {
    expect(Object.is(parseCounterValue('-0', 'Redis'), 0)).toBe(true)
  })

  it('read a lifetime only as a decimal integer >= 0; "" or null is none', () => {
    expect(parseTtlMs('1500', 'Redis')).toBe(1500)
    expect(parseTtlMs('', 'Redis')).toBeUndefined()
    expect(parseTtlMs(null, 'Redis')).toBeUndefined()
    for (const raw of ['abc', ' ', '1.5', '-5', 'Infinity', '9007199254740992']) {
      expect(() => parseTtlMs(raw, 'Redis')).toThrow(
        `Redis answered a lifetime that is not an integer >= 0 (ms): ${JSON.stringify(raw)}`,
      )
    }
  })

  it('refuse a refusal of another shape with a StoreError: index out of range, unknown reason, too short, bad lifetime', () => {
    const bad = [
      ['refused', 'x', 'limit', '5', ''],
      ['refused', '1', 'limit', '5', ''],
      ['refused', '-1', 'limit', '5', ''],
      ['refused', '0', 'bogus', '5', ''],
      ['refused', '0', 'limit'],
      ['refused', '0', 'limit', '5', 'abc'],
    ]
    for (const reply of bad) {
      const error = (() => {
        try {
          return parseRefusal(reply, 1, 'Redis')
        } catch (e) {
          return e
        }
      })()
      expect(StoreError.isInstance(error), JSON.stringify(reply)).toBe(true)
      expect(error).toMatchObject({ retryable: false })
    }
  })
})
