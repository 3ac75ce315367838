import type { QuotaResult } from '@andromeda/core'
import { expect } from 'vitest'
import type { ModelConsumeAllResult, ModelResult, ModelState } from '../model.js'

/**
 * Compare an engine answer with the model's. Without clock control the store's expiry runs on
 * real time, so a TTL-based `resetAt` is compared for presence only (`looseResetAt`); period
 * ends are exact. A refusal may leave out `resetAt` when the store cannot tell it cheaply (the
 * contract allows it).
 */
export function expectResult(
  actual: unknown,
  expected: ModelResult | ModelState,
  looseResetAt: boolean,
  label: string,
) {
  const want: Record<string, unknown> = { ...expected }
  const got = actual as Record<string, unknown> | undefined
  if ('allowed' in expected && !expected.allowed && got?.resetAt === undefined) delete want.resetAt
  if (looseResetAt && typeof want.resetAt === 'number') want.resetAt = expect.any(Number)
  expect(actual, label).toEqual(want)
}

/** Compare a consumeAll answer with the model's: the refused item exactly, the others by status, limit and reason. */
export function expectConsumeAll(
  actual: unknown,
  expected: ModelConsumeAllResult,
  looseResetAt: boolean[],
  label: string,
) {
  const got = actual as { allowed: boolean; results: QuotaResult[]; refused?: unknown; replayed?: boolean }
  expect(got.allowed, `${label}: allowed`).toBe(expected.allowed)
  expect(got.refused, `${label}: refused`).toEqual(expected.refused)
  expect(got.replayed, `${label}: replayed`).toBe(expected.replayed)
  expect(got.results.length, `${label}: results`).toBe(expected.results.length)
  expected.results.forEach((want, i) => {
    if (expected.allowed || i === expected.refused?.index || want.status === 'unlimited') {
      expectResult(got.results[i], want, looseResetAt[i]!, `${label}: results[${i}]`)
    } else {
      // Items other than the refused one: not granted, counted against their own limit, and
      // saying whether they were rolled back or never tried.
      expect(got.results[i], `${label}: results[${i}]`).toMatchObject({
        status: 'refused',
        allowed: false,
        limit: want.limit,
        reason: want.reason,
      })
    }
  })
}
