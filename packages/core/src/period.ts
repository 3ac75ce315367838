import type { Period } from './types.js'

/** The UTC calendar window containing `now`: `[startAt, endAt)` in epoch ms. */
export function periodWindow(period: Period, now: number): { startAt: number; endAt: number } {
  const d = new Date(now)
  const y = d.getUTCFullYear()
  const m = d.getUTCMonth()
  const day = d.getUTCDate()
  switch (period) {
    case 'minute': {
      const startAt = Math.floor(now / 60_000) * 60_000
      return { startAt, endAt: startAt + 60_000 }
    }
    case 'hour': {
      const startAt = Math.floor(now / 3_600_000) * 3_600_000
      return { startAt, endAt: startAt + 3_600_000 }
    }
    case 'day': {
      const startAt = Date.UTC(y, m, day)
      return { startAt, endAt: Date.UTC(y, m, day + 1) }
    }
    case 'week': {
      const sinceMonday = (d.getUTCDay() + 6) % 7
      const startAt = Date.UTC(y, m, day - sinceMonday)
      return { startAt, endAt: Date.UTC(y, m, day - sinceMonday + 7) }
    }
    case 'month':
      return { startAt: Date.UTC(y, m, 1), endAt: Date.UTC(y, m + 1, 1) }
  }
}

/** Nominal length of a period in seconds (the `w` parameter of the RateLimit-Policy header). */
export function periodSeconds(period: Period): number {
  switch (period) {
    case 'minute':
      return 60
    case 'hour':
      return 3600
    case 'day':
      return 86_400
    case 'week':
      return 604_800
    case 'month':
      return 2_592_000
  }
}

export const PERIODS: readonly Period[] = ['minute', 'hour', 'day', 'week', 'month']
