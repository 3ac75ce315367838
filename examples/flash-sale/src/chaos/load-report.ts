import { percentile, tally, total } from '../tools.js'
import type { LoadResult } from './load.js'

/** Print what the clients saw: requests, answers by kind, latency. `kills`: also the requests service kills cut. */
export function printLoadSummary(load: LoadResult, kills: boolean): void {
  const sorted = [...load.latenciesMs].sort((a, b) => a - b)
  const ms = (v: number) => `${v.toFixed(0)} ms`
  console.log('')
  console.log(
    `requests       ${load.sent} in ${(load.durationMs / 1000).toFixed(1)} s (${load.claims} claims, ${load.unclaims} unclaims)`,
  )
  console.log(`granted        ${load.held.size} held at the end`)
  console.log(`refused        ${tally(load.refused)}`)
  console.log(`typed errors   ${tally(load.typed)}`)
  if (kills) console.log(`lost in kills  ${tally(load.lost)}`)
  console.log(`untyped errors ${tally(load.untyped)}`)
  console.log(`hung           ${load.hung}`)
  console.log(
    `latency        p50 ${ms(percentile(sorted, 50))}  p99 ${ms(percentile(sorted, 99))}  max ${ms(sorted.at(-1) ?? Number.NaN)}`,
  )
}

/** What the clients saw that fails a run: a request past its bound, an untyped error, no claim granted at all. */
export function loadFailures(load: LoadResult): string[] {
  const failures: string[] = []
  if (load.hung > 0) failures.push(`${load.hung} request(s) hung past the bound`)
  if (total(load.untyped) > 0) failures.push(`${total(load.untyped)} untyped error(s): ${tally(load.untyped)}`)
  if (load.held.size === 0) failures.push('no claim was granted: the load did not reach the service')
  return failures
}

/** The users holding a claim on `voucher` among `pairs` (`${user} ${voucher}`). */
export function usersOf(pairs: Set<string>, voucher: string): Set<string> {
  return new Set([...pairs].flatMap((pair) => (pair.endsWith(` ${voucher}`) ? [pair.split(' ')[0]!] : [])))
}
