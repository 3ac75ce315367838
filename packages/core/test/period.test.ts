import { describe, expect, it } from 'vitest'
import { periodSeconds, periodWindow } from '../src/period.js'

describe('periodWindow (UTC)', () => {
  const at = Date.UTC(2026, 1, 28, 13, 45, 30, 500) // Saturday 28 Feb 2026

  it('minute, hour and day windows contain the instant', () => {
    expect(periodWindow('minute', at)).toEqual({
      startAt: Date.UTC(2026, 1, 28, 13, 45),
      endAt: Date.UTC(2026, 1, 28, 13, 46),
    })
    expect(periodWindow('hour', at)).toEqual({ startAt: Date.UTC(2026, 1, 28, 13), endAt: Date.UTC(2026, 1, 28, 14) })
    expect(periodWindow('day', at)).toEqual({ startAt: Date.UTC(2026, 1, 28), endAt: Date.UTC(2026, 2, 1) })
  })

  it('a week starts on Monday 00:00 UTC', () => {
    expect(periodWindow('week', at)).toEqual({ startAt: Date.UTC(2026, 1, 23), endAt: Date.UTC(2026, 2, 2) })
    const monday = Date.UTC(2026, 1, 23)
    expect(periodWindow('week', monday).startAt).toBe(monday)
    expect(periodWindow('week', monday - 1).startAt).toBe(Date.UTC(2026, 1, 16))
  })

  it('a month runs to the first of the next month, across a year end', () => {
    expect(periodWindow('month', at)).toEqual({ startAt: Date.UTC(2026, 1, 1), endAt: Date.UTC(2026, 2, 1) })
    expect(periodWindow('month', Date.UTC(2026, 11, 31, 23))).toEqual({
      startAt: Date.UTC(2026, 11, 1),
      endAt: Date.UTC(2027, 0, 1),
    })
  })

  it('gives the nominal window length in seconds', () => {
    expect(periodSeconds('day')).toBe(86_400)
  })
})
