import { type CounterStore, createQuota, type Quota } from '@andromeda/core'

/** Where finished exports are written; in production an object store, in tests a fake. */
export interface ExportSink {
  write(team: string, rows: number): Promise<void>
}

export interface ExportService {
  /** Export `rows` rows for a team: charged against its daily row quota, refunded if the write fails. */
  exportRows(
    team: string,
    rows: number,
  ): Promise<{ ok: true; remaining: number } | { ok: false; retryAt: number | undefined }>
  quota: Quota
}

/**
 * A piece of "your" application code: a daily export allowance per team (free teams 1,000
 * rows, pro teams 50,000). It takes the store and the clock as options, which is all a test
 * needs to run it without Redis and without waiting for midnight.
 */
export function createExportService(options: {
  store: CounterStore
  sink: ExportSink
  plan: (team: string) => 'free' | 'pro'
  clock?: () => number
}): ExportService {
  const quota = createQuota({
    name: 'export-rows',
    store: options.store,
    limit: (team) => (options.plan(team) === 'pro' ? 50_000 : 1_000),
    period: 'day',
    ...(options.clock ? { clock: options.clock } : {}),
  })
  return {
    quota,
    async exportRows(team, rows) {
      const result = await quota.consume(team, rows)
      if (!result.allowed) return { ok: false, retryAt: result.resetAt }
      try {
        await options.sink.write(team, rows)
      } catch (error) {
        await quota.refund(team, rows) // the rows were not exported: do not charge them
        throw error
      }
      return { ok: true, remaining: result.remaining }
    },
  }
}
