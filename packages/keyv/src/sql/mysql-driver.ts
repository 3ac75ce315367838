import { dialectDriver } from './dialect.js'
import type { ApplyArgs, CallControl, SqlDriver } from './driver.js'
import { mysqlGet } from './mysql/get.js'
import { mysqlMigration } from './mysql/migration.js'
import { mysqlNames } from './mysql/names.js'
import { MYSQL_NOW } from './mysql/parts.js'
import { classifyMysqlError } from './mysql-errors.js'
import { call, closePool, type MysqlPool, mysqlPool, query } from './mysql-pool.js'
import type { SqlNames } from './names.js'

export interface MysqlDriverSettings {
  /** The @keyv/mysql adapter's `opts`: its connection URI and mysql2 pool options. */
  adapterOptions: Record<string, unknown>
  table: string
  commandTimeoutMs: number
}

/**
 * The MySQL / MariaDB driver: a mysql2 pool of the store's own, opened with the adapter's
 * connection options. Every value reaches the server through mysql2's escaping (`?`
 * placeholders; Buffers as hex literals). Every connection has an `error` listener, so a
 * session killed with `KILL` never surfaces as an unhandled `error` event.
 */
export function createMysqlDriver(settings: MysqlDriverSettings): SqlDriver {
  const { adapterOptions, commandTimeoutMs, table } = settings
  const names = mysqlNames(table)
  const pool = mysqlPool({ adapterOptions, commandTimeoutMs })
  return dialectDriver({
    name: 'mysql',
    nowText: MYSQL_NOW,
    getText: mysqlGet(names),
    rows: async (text, values, control) => (await query(pool, text, values, control)) as Record<string, unknown>[],
    call: (routine, values, control) =>
      call(pool, `CALL ${names[routine]}(${values.map(() => '?').join(', ')})`, values, control),
    applyValues,
    migrate: (control) => migrate(pool, table, names, control),
    classify: classifyMysqlError,
    close: () => closePool(pool),
  })
}

async function migrate(pool: MysqlPool, table: string, names: SqlNames, control: CallControl): Promise<void> {
  const check = `SELECT COUNT(*) AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME = ?`
  // The last routine made: when it exists, everything before it does too.
  const [row] = (await query(pool, check, [names.releaseLock.slice(1, -1)], control)) as { n: number }[]
  if (Number(row?.n) > 0) return
  // Each statement is IF NOT EXISTS: processes starting together can all run them.
  for (const statement of mysqlMigration(table)) await query(pool, statement, [], control)
}

const hex = (keys: (Buffer | null)[]) => keys.map((key) => (key === null ? '' : key.toString('hex'))).join(',')
const list = (items: (number | null)[]) => items.map((item) => (item === null ? '' : String(item))).join(',')
const flags = (items: boolean[]) => items.map((item) => (item ? '1' : '0')).join(',')

/** The apply procedure's arguments: lists as comma-separated text (see mysql/apply.ts). */
function applyValues(args: ApplyArgs, deadline: number): unknown[] {
  // Keys whose row this call may create: an op that adds to or takes from a counter it may
  // create, and the idempotency record.
  const creatable = new Set<string>()
  args.keys.forEach((key, i) => {
    if (!args.report[i] && args.deltas[i] !== 0) creatable.add(key.toString('hex'))
  })
  if (args.idempotencyKey) creatable.add(args.idempotencyKey.toString('hex'))
  return [
    hex(args.keys),
    list(args.deltas),
    list(args.bounds),
    list(args.ttls),
    flags(args.report),
    hex(args.holdIds),
    list(args.holdMs),
    hex(args.settleIds),
    list(args.keep),
    hex(args.loadLocks),
    hex(args.loadLockOrder),
    hex(args.lockOrder),
    flags(args.lockOrder.map((key) => creatable.has(key.toString('hex')))),
    args.idempotencyKey,
    args.idempotencyTtlMs,
    args.clearKey,
    deadline,
  ]
}
