import { InvalidArgumentError } from './errors.js'
import { QuotaEngine } from './quota.js'
import type { Quota } from './types.js'
import { checkFunction, checkOptionKeys, checkTimerMs } from './validate.js'

/** Options of `createUsageSync`. */
export interface UsageSyncOptions {
  /** The quota whose usage is written back. */
  quota: Quota<any>
  /** The ids to sync on each run (e.g. the vouchers on sale). May be async. */
  ids: () => Iterable<string> | Promise<Iterable<string>>
  /**
   * Write one id's usage (its counter's current value, an integer >= 0) to the system of
   * record. Awaited, one id at a time; a throw or rejection goes to `onError` and the run goes
   * on with the next id.
   */
  persist: (id: string, usage: number) => unknown
  /** Time between runs (ms): a timer, so at most 2^31 - 1 (larger is refused, naming the largest value). */
  intervalMs: number
  /**
   * Told about each failure (reading an id, persisting it, or listing ids: then `id` is
   * undefined); the run goes on. Without it, failures are dropped.
   */
  onError?: (error: unknown, id: string | undefined) => void
}

/** A write-behind sync. Nothing runs until `start()` (or `flush()`) is called. */
export interface UsageSync {
  /** Start the periodic runs, every `intervalMs` (idempotent). The timer does not keep the process alive. */
  start(): void
  /** Run once now, after any run in progress; resolves when this run is done. */
  flush(): Promise<void>
  /** Stop the timer, wait for a run in progress, then run once more so the last usage is saved. */
  stop(): Promise<void>
}

/**
 * Write-behind sync: periodically read the usage of some ids and hand it to `persist` (the Go
 * original's advice to "use job scheduling to update usage from redis to database", as a
 * feature). Nothing runs until `start()` is called (or `flush()`, for one run now). Runs never
 * overlap; `stop()` flushes once more, so call it on shutdown; failures go to `onError`.
 *
 * A counter whose TTL is shorter than the interval can expire before its usage is saved and
 * then be reloaded stale from the database (an oversell): `createUsageSync` warns when the
 * quota's constant `ttlMs` is shorter than `intervalMs`.
 *
 * @throws InvalidArgumentError for a bad option.
 * @example
 * ```ts
 * const sync = createUsageSync({
 *   quota: vouchers,
 *   ids: () => db.activeVoucherCodes(),
 *   persist: (code, usage) => db.query('UPDATE vouchers SET usage = $2 WHERE code = $1', [code, usage]),
 *   intervalMs: 3000,
 *   onError: (error, code) => console.error('usage sync failed for', code, error),
 * })
 * sync.start() // nothing is saved before this
 * process.once('SIGTERM', () => void sync.stop()) // saves the last usage once more
 * ```
 */
export function createUsageSync(options: UsageSyncOptions): UsageSync {
  const intervalMs = checkSyncOptions(options)
  warnIfTtlShorter(options.quota as QuotaEngine<any>, intervalMs)
  const report = (error: unknown, id: string | undefined) => {
    try {
      options.onError?.(error, id)
    } catch {
      // an error reporter that throws must not stop the sync
    }
  }
  const runOnce = () => syncOnce(options, report)

  // One chain of runs: each flush waits for the previous one, so two never overlap.
  let chain: Promise<void> = Promise.resolve()
  let running = false
  let timer: NodeJS.Timeout | undefined

  const flush = () => {
    chain = chain.then(runOnce)
    return chain
  }

  return {
    start() {
      if (timer) return
      timer = setInterval(() => {
        if (running) return // a slow run is still going: skip this tick rather than queue up
        running = true
        flush().finally(() => {
          running = false
        })
      }, intervalMs)
      timer.unref()
    },
    flush,
    async stop() {
      clearInterval(timer)
      timer = undefined
      await flush()
    },
  }
}

/** Check the options (throws `InvalidArgumentError` naming the option); returns the interval. */
function checkSyncOptions(options: UsageSyncOptions): number {
  checkOptionKeys('', options, ['quota', 'ids', 'persist', 'intervalMs', 'onError'])
  if (!(options?.quota instanceof QuotaEngine))
    throw new InvalidArgumentError('quota', 'must be a quota made by createQuota')
  checkFunction('ids', options.ids)
  checkFunction('persist', options.persist)
  const intervalMs = checkTimerMs('intervalMs', options.intervalMs)
  if (options.onError !== undefined) checkFunction('onError', options.onError)
  return intervalMs
}

/** A counter that can expire between two runs can be reloaded stale from the database: say so. */
function warnIfTtlShorter(quota: QuotaEngine<any>, intervalMs: number): void {
  const ttlMs = quota.config.ttlMs
  if (typeof ttlMs === 'number' && ttlMs < intervalMs) {
    process.emitWarning(
      `quota "${quota.name}" has ttlMs ${ttlMs} shorter than the sync interval ${intervalMs}: a counter can expire before its usage is saved and be reloaded stale.`,
      { code: 'ANDROMEDA_SYNC_TTL' },
    )
  }
}

/** One run: list the ids, then read and persist each in turn; every failure is reported and the run goes on. */
async function syncOnce(
  options: UsageSyncOptions,
  report: (error: unknown, id: string | undefined) => void,
): Promise<void> {
  let ids: Iterable<string>
  try {
    const listed: unknown = await options.ids()
    if (
      typeof listed !== 'object' ||
      listed === null ||
      typeof (listed as Iterable<string>)[Symbol.iterator] !== 'function'
    ) {
      throw new InvalidArgumentError(
        'ids',
        `must return an iterable of ids (or a promise of one), got ${listed === null ? 'null' : typeof listed}`,
      )
    }
    ids = listed as Iterable<string>
  } catch (error) {
    report(error, undefined)
    return
  }
  for (const id of ids) {
    try {
      const { usage } = await options.quota.get(id)
      await options.persist(id, usage)
    } catch (error) {
      report(error, id)
    }
  }
}
