import type { QuotaHooks } from '@andromeda/core'
import { ATTR, type QuotaInstruments } from './instruments.js'

/** The stable code of an andromeda error, else its name: a bounded set of values. */
function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code === 'string') return code
  return error instanceof Error ? error.name : 'unknown'
}

/** Hooks that record each quota event to `instruments`, labelled by the quota's name. */
export function recordingHooks(instruments: QuotaInstruments): Required<QuotaHooks<any>> {
  return {
    onConsume({ quota, result }) {
      const grant = result.status === 'granted' ? 'counted' : result.status
      instruments.granted.add(1, { [ATTR.quota]: quota, [ATTR.grant]: grant })
    },
    onRefund({ quota, result }) {
      instruments.refunded.add(1, {
        [ATTR.quota]: quota,
        [ATTR.grant]: result.status === 'granted' ? 'counted' : result.status,
      })
    },
    onExceeded({ quota, result }) {
      // 'floor' is a refund refused below zero; 'limit' and 'store' are refused consumes.
      instruments.refused.add(1, { [ATTR.quota]: quota, [ATTR.reason]: result.reason ?? 'limit' })
    },
    onLoad({ quota }) {
      instruments.loads.add(1, { [ATTR.quota]: quota })
    },
    onError({ quota, operation, error }) {
      instruments.errors.add(1, {
        [ATTR.quota]: quota,
        [ATTR.operation]: operation,
        [ATTR.errorType]: errorType(error),
      })
    },
    onCompensate({ quota, result, error }) {
      // Refused means the units were already gone (the counter expired or was reset meanwhile).
      const outcome = error !== undefined ? 'failed' : result?.allowed ? 'given_back' : 'already_gone'
      instruments.compensations.add(1, { [ATTR.quota]: quota, [ATTR.outcome]: outcome })
    },
  }
}

/** Call `first`, then `second` (the user's hook, whose return value is kept). */
export function composeHooks<D>(first: Required<QuotaHooks<any>>, second: QuotaHooks<D> | undefined): QuotaHooks<D> {
  const names = Object.keys(first) as (keyof QuotaHooks)[]
  const hooks: QuotaHooks<D> = {}
  for (const name of names) {
    const own = second?.[name] as ((event: unknown) => unknown) | undefined
    const record = first[name] as (event: unknown) => unknown
    ;(hooks as Record<string, (event: unknown) => unknown>)[name] = own
      ? (event) => {
          try {
            record(event)
          } catch {
            // Recording never changes what the user's hook sees.
          }
          return own(event)
        }
      : record
  }
  return hooks
}
