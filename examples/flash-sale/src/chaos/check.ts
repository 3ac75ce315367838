import type { Quota } from '@andromeda/core'
import type { Redis } from 'ioredis'
import type { Database } from '../db.js'
import type { StoreHandle } from '../store.js'
import { table, tally } from '../tools.js'
import { FAULT_KINDS, type Fault, heldVoucherUnits } from './faults.js'
import type { LoadResult } from './load.js'
import { loadFailures, printLoadSummary, usersOf } from './load-report.js'

/** What the checks read, in this process: the tables, the Redis keys, the voucher quota as the service defines it. */
export interface Observer {
  db: Database
  store: StoreHandle
  vouchers: Quota
  admin: Redis
  keyPrefix: string
  codes: string[]
}

/**
 * The end of `pnpm chaos`, once the hold time has passed: per voucher, the claims the clients
 * hold vs the rows, and the limit, live counter, synced usage and reloaded counter vs the rows;
 * then the faults, the load and the service's own errors. Prints the report; returns the failures.
 */
export async function checkChaosRun(
  o: Observer,
  load: LoadResult,
  faults: Fault[],
  serviceErrors: Map<string, number>,
  holdMs: number,
): Promise<string[]> {
  // The hold time has passed: every hold of a killed claim must have come back by now.
  const live = new Map<string, number>()
  for (const code of o.codes) live.set(code, (await o.vouchers.get(code)).usage)
  const holdsLeft = await heldVoucherUnits(o.admin, o.keyPrefix, o.codes)
  const vouchers = await checkVouchers(o, load, live)
  const failures = [...vouchers.failures, ...faultFailures(faults)]
  printFaults(faults)
  console.log(
    `\nvouchers (counter: live, ${holdMs} ms after the load; reloaded: after every key was deleted; in doubt: cut by a kill)`,
  )
  console.log(
    table(
      ['voucher', 'limit', 'granted', 'in doubt', 'claim rows', 'synced usage', 'counter', 'reloaded', 'check'],
      vouchers.rows,
    ),
  )
  printLoadSummary(load, true)
  const kills = serviceKills(faults)
  const sum = (key: 'inFlight' | 'heldUnits') => kills.reduce((n, f) => n + (f[key] ?? 0), 0)
  console.log(
    `service kills  ${kills.length}: ${sum('inFlight')} requests in flight, ${sum('heldUnits')} voucher units held when they died`,
  )
  console.log(`holds left     ${holdsLeft} voucher units still held ${holdMs} ms after the load`)
  console.log(
    `counters low   ${vouchers.lowUnits} unit(s) below the claim rows (rows whose holds lapsed before their commit: the database's guard covers them)`,
  )
  console.log(
    `service errors ${tally(serviceErrors)} (logged by the service: failed settles, refunds, sync writes, 5xx)`,
  )
  if (holdsLeft > 0) failures.push(`${holdsLeft} voucher unit(s) still held after the hold time`)
  return [...failures, ...loadFailures(load)]
}

/** Per voucher, against its claim rows: the table's rows, the failures, and the units the counters are below the rows. */
async function checkVouchers(o: Observer, load: LoadResult, live: Map<string, number>) {
  const failures: string[] = []
  const rows: string[][] = []
  let lowUnits = 0
  // Every counter goes (as a Redis restart would take them); `get` must reload them from the claim rows.
  await o.store.deleteOwnKeys()
  for (const voucher of await o.db.vouchers()) {
    const granted = usersOf(load.held, voucher.code)
    const inDoubt = usersOf(load.inDoubt, voucher.code)
    const claimRows = new Set(await o.db.claimUsers(voucher.code))
    const reloaded = (await o.vouchers.get(voucher.code)).usage
    const counter = live.get(voucher.code)!
    const grantedNoRow = [...granted].filter((user) => !claimRows.has(user) && !inDoubt.has(user))
    const rowNotGranted = [...claimRows].filter((user) => !granted.has(user) && !inDoubt.has(user))
    const problems: string[] = []
    if (claimRows.size > voucher.limit) problems.push('OVERSOLD')
    if (grantedNoRow.length > 0 || rowNotGranted.length > 0) problems.push('GRANTED≠ROWS')
    // After the hold time the live counter holds committed units only: above the rows is a
    // leaked unit. Below them is possible: a claim killed between its row and its commit leaves
    // a row whose hold lapsed, and the database's guard refuses what that lets through (the
    // first claim it refuses charges the unit back, see app.ts).
    if (counter > claimRows.size) problems.push('LEAKED')
    lowUnits += Math.max(claimRows.size - counter, 0)
    if (voucher.usage !== counter) problems.push('SYNCED≠COUNTER')
    if (reloaded !== claimRows.size) problems.push('RELOADED≠ROWS')
    for (const p of problems) {
      failures.push(
        `${voucher.code}: ${p} (limit ${voucher.limit}, granted ${granted.size}, in doubt ${inDoubt.size}, rows ${claimRows.size}, ` +
          `counter ${counter}, synced ${voucher.usage}, reloaded ${reloaded}; granted without a row: ${grantedNoRow.join(' ') || '-'}, ` +
          `rows never granted: ${rowNotGranted.join(' ') || '-'})`,
      )
    }
    const cells = [granted.size, inDoubt.size, claimRows.size, voucher.usage, counter, reloaded].map(String)
    rows.push([voucher.code, String(voucher.limit), ...cells, problems.length ? problems.join(',') : 'ok'])
  }
  return { rows, failures, lowUnits }
}

function serviceKills(faults: Fault[]): Fault[] {
  return faults.filter((f) => f.kind === 'service-kill' && f.inFlight !== undefined)
}

/** The faults by kind, with when each was injected. */
function printFaults(faults: Fault[]): void {
  console.log('\nfaults injected')
  const width = Math.max(...FAULT_KINDS.map((kind) => kind.length))
  console.log(`${'kind'.padEnd(width)}  count  at (seconds since the load began)`)
  for (const kind of FAULT_KINDS) {
    const mine = faults.filter((f) => f.kind === kind)
    const times = mine.map((f) => `${f.at.toFixed(1)}${f.detail ? ` (${f.detail})` : ''}`).join(', ')
    console.log(`${kind.padEnd(width)}  ${String(mine.length).padStart(5)}  ${times || '-'}`)
  }
}

/** A run whose faults did not happen as planned proves nothing. */
function faultFailures(faults: Fault[]): string[] {
  const failures: string[] = []
  const failed = faults.filter((f) => f.detail.startsWith('FAILED'))
  if (faults.length === 0) failures.push('no fault was injected')
  if (failed.length > 0) failures.push(`${failed.length} fault(s) could not be injected`)
  // Holds of a dead process can only come back by expiring: the live counters at the end (no
  // LEAKED, no holds left) check that for every kill, so one kill that caught holds suffices.
  if (!serviceKills(faults).some((kill) => (kill.heldUnits ?? 0) > 0))
    failures.push('no service kill caught the service holding voucher units')
  return failures
}
