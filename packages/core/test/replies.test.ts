import { describe, expect, it } from 'vitest'
import { parseCounterValue, parseRefusal, StoreError } from '../src/store/index.js'

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
})
