import type { ApplyResult, CounterSnapshot } from '@andromeda/core'
import { StoreError } from '@andromeda/core'
import { parseCounterValue, parseRefusal, parseTtlMs } from '@andromeda/core/store'
import type { RawSnapshot } from './driver.js'

const DATABASE = 'the database'
const parseValue = (raw: string | undefined): number => parseCounterValue(raw, DATABASE)
const parseTtl = (raw: string | undefined | null): number | undefined => parseTtlMs(raw, DATABASE)

/**
 * The apply routine's reply (postgres/apply.ts):
 * `ok,v1,ttl1,...` | `same,v1,ttl1,...` | `replay,now,recordedAt,v1,ttl1,...` |
 * `refused,index,reason,v1,ttl1,...`.
 */
export function parseApplyReply(reply: string, n: number): ApplyResult {
  const parts = reply.split(',')
  const status = parts[0]
  if (status === 'ok' || status === 'same' || status === 'replay') {
    // A replay reports each recorded lifetime less the time since it was recorded.
    const offset = status === 'replay' ? 3 : 1
    const elapsedMs = status === 'replay' ? Number(parts[1]) - Number(parts[2]) : 0
    const values: number[] = new Array(n)
    const ttlMs: (number | undefined)[] = new Array(n)
    for (let i = 0; i < n; i++) {
      values[i] = parseValue(parts[offset + 2 * i])
      const ttl = parseTtl(parts[offset + 2 * i + 1])
      ttlMs[i] = ttl === undefined ? undefined : ttl - elapsedMs
    }
    // 'same': every op settled a hold settled before, so nothing changed (as a replay).
    return status === 'ok' ? { ok: true, values, ttlMs } : { ok: true, values, ttlMs, replayed: true }
  }
  if (status === 'refused') return parseRefusal(parts, n, DATABASE)
  throw new StoreError(`unexpected reply from the apply routine: ${JSON.stringify(reply)}`, { retryable: false })
}

export function parseSnapshot(raw: RawSnapshot | undefined): CounterSnapshot | undefined {
  if (raw === undefined) return undefined
  const value = parseValue(raw.value)
  const ttlMs = parseTtl(raw.ttlMs)
  return ttlMs === undefined ? { value } : { value, ttlMs }
}
