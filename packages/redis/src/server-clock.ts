import type { Driver } from './driver.js'

/** How long one calibration is trusted before it is refreshed in the background. */
const CALIBRATION_MAX_AGE_MS = 60_000

/**
 * (Server clock − `performance.now()`), measured with `TIME` on every primary, so a call's
 * deadline can travel in the server's clock. `performance.now()` is monotonic: no wall clock
 * step on this machine moves a deadline.
 */
export class ServerClock {
  /** Lower bound of (server clock − `performance.now()`) over every primary, ms; undefined until measured. */
  offsetMs: number | undefined
  private refreshAfter = 0
  private calibrating: Promise<void> | undefined

  constructor(
    private readonly driver: Driver,
    private readonly timeoutMs: number,
  ) {}

  /** True while a measurement is in flight. */
  get busy(): boolean {
    return this.calibrating !== undefined
  }

  /** Measure on every primary; one measurement at a time, bounded by the store's timeout. */
  calibrate(): Promise<void> {
    this.calibrating ??= (async () => {
      const abort = new AbortController()
      const timer = setTimeout(() => abort.abort(), this.timeoutMs)
      try {
        const offsets = await this.driver.clockOffsets(abort.signal)
        // TIME answered at or before our reading, so each sample is a lower bound of its
        // primary's offset; the smallest bounds them all.
        this.offsetMs = Math.min(...offsets)
        this.refreshAfter = performance.now() + CALIBRATION_MAX_AGE_MS + this.timeoutMs
      } finally {
        clearTimeout(timer)
        this.calibrating = undefined
      }
    })()
    return this.calibrating
  }

  /** Refresh a calibration past its age in the background (for a call due at `dueAt`); calls keep the current one meanwhile. */
  refreshIfOld(dueAt: number): void {
    if (dueAt > this.refreshAfter && !this.calibrating) this.calibrate().catch(() => {})
  }
}
