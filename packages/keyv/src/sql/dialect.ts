import type { ApplyArgs, CallControl, FailureKind, RawSnapshot, SqlDriver, WriteRoutine } from './driver.js'
import type { SqlNames } from './names.js'

/** The routines the store calls, by their key in `SqlNames`. */
export type RoutineName = keyof Pick<SqlNames, 'apply' | 'get' | WriteRoutine['name']>

/**
 * What a dialect's driver does its own way: the statements, the client, how values travel. What
 * the store's calls mean (a routine's arguments, how its reply reads) is `dialectDriver`'s, once
 * for both.
 */
export interface Dialect {
  readonly name: SqlDriver['dialect']
  /** Reads the database clock, epoch ms, as `now_ms`. */
  readonly nowText: string
  /** The read-only get of one key: `value`, `ttl_ms`, `stale` (see postgres/get.ts), no row when missing. */
  readonly getText: string
  /** The rows of one statement. */
  rows(text: string, values: unknown[], control: CallControl): Promise<Record<string, unknown>[]>
  /** A routine's reply, `values` in its parameters' order. */
  call(routine: RoutineName, values: unknown[], control: CallControl): Promise<unknown>
  /** The apply routine's arguments, in the form the dialect's routine takes them. */
  applyValues(args: ApplyArgs, deadline: number): unknown[]
  migrate(control: CallControl): Promise<void>
  classify(error: unknown, control: CallControl): FailureKind
  close(): Promise<void>
}

/** A yes from the database: PostgreSQL answers a boolean, MySQL 1 or 0. */
const yes = (reply: unknown) => reply === true || Number(reply) === 1

/** A write routine's arguments, in its parameters' order (the same on both dialects). */
function writeValues(routine: WriteRoutine, deadline: number): unknown[] {
  switch (routine.name) {
    case 'seed':
      return [
        routine.key,
        routine.value,
        routine.ttlMs,
        routine.load?.lock ?? null,
        routine.load?.token ?? null,
        deadline,
      ]
    case 'set':
      return [routine.key, routine.value, routine.ttlMs, deadline]
    case 'delete':
      return [routine.key, deadline]
    case 'acquireLock':
      return [routine.key, routine.token, routine.ttlMs, deadline]
    case 'releaseLock':
      return [routine.key, routine.token, deadline]
  }
}

/** The get routine's reply: 'value,ttl' ('' ttl: none), or '' when the counter is missing. */
function parseGetReply(reply: string): RawSnapshot | undefined {
  if (reply === '') return undefined
  const [value = '', ttl = ''] = reply.split(',')
  return { value, ttlMs: ttl === '' ? null : ttl }
}

async function get(
  dialect: Dialect,
  key: Buffer,
  deadline: number,
  control: CallControl,
): Promise<RawSnapshot | undefined> {
  const [row] = await dialect.rows(dialect.getText, [key], control)
  if (!row) return undefined
  // Expired holds: their units come back (a write, under the row lock) before the read.
  if (yes(row.stale)) return parseGetReply(String((await dialect.call('get', [key, deadline], control)) ?? ''))
  return { value: String(row.value), ttlMs: row.ttl_ms === null ? null : String(row.ttl_ms) }
}

/** The driver of one dialect: every store call is one read or one routine call. */
export function dialectDriver(dialect: Dialect): SqlDriver {
  return {
    dialect: dialect.name,
    migrate: (control) => dialect.migrate(control),
    now: async (control) => {
      const [row] = await dialect.rows(dialect.nowText, [], control)
      return Number(row?.now_ms)
    },
    apply: async (args, deadline, control) =>
      String(await dialect.call('apply', dialect.applyValues(args, deadline), control)),
    write: async (routine, deadline, control) =>
      yes(await dialect.call(routine.name, writeValues(routine, deadline), control)),
    get: (key, deadline, control) => get(dialect, key, deadline, control),
    classify: (error, control) => dialect.classify(error, control),
    close: () => dialect.close(),
  }
}
