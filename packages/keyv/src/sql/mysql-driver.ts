import {
  type ApplyArgs,
  type CallControl,
  parseGetReply,
  type RawSnapshot,
  type SqlDriver,
  type WriteRoutine,
} from './driver.js'
import { mysqlGet } from './mysql/get.js'
import { mysqlMigration } from './mysql/migration.js'
import { type MysqlNames, mysqlNames } from './mysql/names.js'
import { MYSQL_NOW } from './mysql/parts.js'
import { classifyMysqlError } from './mysql-errors.js'
import { call, closePool, type MysqlPool, mysqlPool, query } from './mysql-pool.js'

export interface MysqlDriverSettings {
  /** The @keyv/mysql adapter's `opts`: its connection URI and mysql2 pool options. */
  adapterOptions: Record<string, unknown>
  table: string
  commandTimeoutMs: number
}

/** What every call of one driver uses. */
interface Context {
  readonly pool: MysqlPool
  readonly table: string
  readonly names: MysqlNames
  /** The read-only get (see `mysqlGet`). */
  readonly getText: string
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
  const context: Context = {
    pool: mysqlPool({ adapterOptions, commandTimeoutMs }),
    table,
    names,
    getText: mysqlGet(names),
  }
  return {
    dialect: 'mysql',
    migrate: (control) => migrate(context, control),
    now: (control) => now(context, control),
    apply: (args, deadline, control) => apply(context, args, deadline, control),
    write: (routine, deadline, control) => write(context, routine, deadline, control),
    get: (key, deadline, control) => get(context, key, deadline, control),
    classify: classifyMysqlError,
    close: () => closePool(context.pool),
  }
}

async function migrate({ pool, table, names }: Context, control: CallControl): Promise<void> {
  const check = `SELECT COUNT(*) AS n FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME = ?`
  // The last routine made: when it exists, everything before it does too.
  const [row] = (await query(pool, check, [names.releaseLock.slice(1, -1)], control)) as { n: number }[]
  if (Number(row?.n) > 0) return
  // Each statement is IF NOT EXISTS: processes starting together can all run them.
  for (const statement of mysqlMigration(table)) await query(pool, statement, [], control)
}

async function now({ pool }: Context, control: CallControl): Promise<number> {
  const [row] = (await query(pool, MYSQL_NOW, [], control)) as { now_ms: string }[]
  return Number(row?.now_ms)
}

const hex = (keys: Buffer[]) => keys.map((key) => key.toString('hex')).join(',')
const list = (items: (number | null)[]) => items.map((item) => (item === null ? '' : String(item))).join(',')

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
    args.report.map((report) => (report ? '1' : '0')).join(','),
    args.holdIds.map((id) => (id === null ? '' : id.toString('hex'))).join(','),
    list(args.holdMs),
    args.settleIds.map((id) => (id === null ? '' : id.toString('hex'))).join(','),
    list(args.keep),
    args.loadLocks.map((key) => (key === null ? '' : key.toString('hex'))).join(','),
    hex(args.loadLockOrder),
    hex(args.lockOrder),
    args.lockOrder.map((key) => (creatable.has(key.toString('hex')) ? '1' : '0')).join(','),
    args.idempotencyKey,
    args.idempotencyTtlMs,
    args.clearKey,
    deadline,
  ]
}

async function apply(
  { pool, names }: Context,
  args: ApplyArgs,
  deadline: number,
  control: CallControl,
): Promise<string> {
  return String(
    await call(
      pool,
      `CALL ${names.apply}(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      applyValues(args, deadline),
      control,
    ),
  )
}

/** The CALL of a write routine's procedure, and its values. */
function writeCall(names: MysqlNames, routine: WriteRoutine, deadline: number): { sql: string; values: unknown[] } {
  switch (routine.name) {
    case 'seed':
      return {
        sql: `CALL ${names.seed}(?, ?, ?, ?, ?, ?)`,
        values: [
          routine.key,
          routine.value,
          routine.ttlMs,
          routine.load?.lock ?? null,
          routine.load?.token ?? null,
          deadline,
        ],
      }
    case 'set':
      return { sql: `CALL ${names.set}(?, ?, ?, ?)`, values: [routine.key, routine.value, routine.ttlMs, deadline] }
    case 'delete':
      return { sql: `CALL ${names.delete}(?, ?)`, values: [routine.key, deadline] }
    case 'acquireLock':
      return {
        sql: `CALL ${names.acquireLock}(?, ?, ?, ?)`,
        values: [routine.key, routine.token, routine.ttlMs, deadline],
      }
    case 'releaseLock':
      return { sql: `CALL ${names.releaseLock}(?, ?, ?)`, values: [routine.key, routine.token, deadline] }
  }
}

async function write(
  { pool, names }: Context,
  routine: WriteRoutine,
  deadline: number,
  control: CallControl,
): Promise<boolean> {
  const { sql, values } = writeCall(names, routine, deadline)
  return Number(await call(pool, sql, values, control)) === 1
}

async function get(
  { pool, names, getText }: Context,
  key: Buffer,
  deadline: number,
  control: CallControl,
): Promise<RawSnapshot | undefined> {
  const [row] = (await query(pool, getText, [key], control)) as {
    value: string
    ttl_ms: string | null
    stale: number
  }[]
  if (!row) return undefined
  // Expired holds: their units come back (a write, under the row lock) before the read.
  if (Number(row.stale) === 1)
    return parseGetReply(String(await call(pool, `CALL ${names.get}(?, ?)`, [key, deadline], control)))
  return { value: String(row.value), ttlMs: row.ttl_ms === null ? null : String(row.ttl_ms) }
}
