import type { ApplyResult, CounterSnapshot } from '@andromeda/core'
import { StoreError } from '@andromeda/core'
import { parseCounterValue, parseOptionalCounterValue, parseRefusal, parseTtlMs } from '@andromeda/core/store'

/**
 * Turning script replies into contract results. Every reply is an array of strings (see
 * `scripts/prelude.ts`); `at` is where one call's part starts in a batch reply.
 */

/** A batch entry answered with an error of its own (its other entries are fine). */
export class EntryError extends Error {
  override name = 'EntryError'
}

/** A counter value read from Redis; anything but a safe integer is a fault. */
export const parseValue = (raw: string): number => parseCounterValue(raw, 'Redis')

/** A value the script wrote itself with string.format('%d') (checked there). */
const written = (raw: string): number => Number(raw)

const parseTtl = (raw: string | undefined): number | undefined => parseTtlMs(raw, 'Redis')
const parseOptional = (raw: string | undefined): number | undefined => parseOptionalCounterValue(raw, 'Redis')

const REFUSED = { l: 'limit', f: 'floor', m: 'missing', x: 'hold' } as const

/** A batch entry of an apply with one op: code, value, pttl (see `scripts/batch.ts`). */
export function decodeApplyEntry(reply: string[], at: number): ApplyResult {
  const code = reply[at]
  const a = reply[at + 1] ?? ''
  const b = reply[at + 2]
  switch (code) {
    case 'o':
      return { ok: true, values: [written(a)], ttlMs: [parseTtl(b)] }
    case 'l':
    case 'f':
    case 'm':
    case 'x':
      return { ok: false, index: 0, reason: REFUSED[code], values: [parseOptional(a)], ttlMs: [parseTtl(b)] }
    case 'p':
      // A hold settled before: nothing changed now.
      return { ok: true, values: [a === '' ? 0 : parseValue(a)], ttlMs: [parseTtl(b)], replayed: true }
    case 'r': {
      // The record's lifetime was measured when it was written; the contract wants it now.
      const [value, ttl] = a.split(',')
      const recorded = parseTtl(ttl)
      return {
        ok: true,
        values: [parseValue(value ?? '')],
        ttlMs: [recorded === undefined ? undefined : recorded - Number(b)],
        replayed: true,
      }
    }
    case 'e':
      throw new EntryError(a)
    default:
      throw new StoreError(`unexpected reply to the batch script: ${JSON.stringify(reply.slice(at, at + 3))}`, {
        retryable: false,
      })
  }
}

/** A batch entry of a read: 'o', value ('' = missing), pttl ('' = none). */
export function decodeGetEntry(reply: string[], at: number): CounterSnapshot | undefined {
  const code = reply[at]
  if (code === 'e') throw new EntryError(reply[at + 1] ?? '')
  const raw = reply[at + 1]
  if (code !== 'o')
    throw new StoreError(`unexpected reply to the batch script: ${JSON.stringify(reply.slice(at, at + 3))}`, {
      retryable: false,
    })
  if (raw === undefined || raw === '') return undefined
  const value = parseValue(raw)
  const ttlMs = parseTtl(reply[at + 2])
  return ttlMs === undefined ? { value } : { value, ttlMs }
}

/** The apply script: {'ok' | 'settled', v1, ttl1, ...} | {'replay', 'v1,ttl1,...', ms since recorded} | {'refused', index, reason, v1, ttl1, ...}. */
export function parseApply(reply: string[], n: number): ApplyResult {
  const status = reply[0]
  const values: (number | undefined)[] = new Array(n)
  const ttlMs: (number | undefined)[] = new Array(n)
  if (status === 'ok' || status === 'settled') {
    for (let i = 0; i < n; i++) {
      values[i] = written(reply[1 + 2 * i] ?? '')
      ttlMs[i] = parseTtl(reply[2 + 2 * i])
    }
    // 'settled': every op settled a hold settled before, so nothing changed now.
    return status === 'ok'
      ? { ok: true, values: values as number[], ttlMs }
      : { ok: true, values: values as number[], ttlMs, replayed: true }
  }
  if (status === 'replay') {
    const parts = (reply[1] ?? '').split(',')
    const elapsedMs = Number(reply[2] ?? 0)
    for (let i = 0; i < n; i++) {
      values[i] = parseValue(parts[2 * i] ?? '')
      const ttl = parseTtl(parts[2 * i + 1])
      ttlMs[i] = ttl === undefined ? undefined : ttl - elapsedMs
    }
    return { ok: true, values: values as number[], ttlMs, replayed: true }
  }
  if (status === 'refused') return parseRefusal(reply, n, 'Redis')
  throw new StoreError(`unexpected reply to the apply script: ${JSON.stringify(reply)}`, { retryable: false })
}

/** seed, acquireLock, releaseLock: {'ok', '1' | '0'}. */
export const parseFlag = (reply: string[]): boolean => reply[1] === '1'

export const parseNothing = (): void => {}
