import {
  type ApplyArgs,
  type CallControl,
  parseGetReply,
  type RawSnapshot,
  type SqlDriver,
  type WriteRoutine,
} from './driver.js'
import { postgresGet } from './postgres/get.js'
import { postgresMigration } from './postgres/migration.js'
import { type PostgresNames, postgresNames } from './postgres/names.js'
import { POSTGRES_NOW } from './postgres/parts.js'
import { classifyPostgresError } from './postgres-errors.js'
import { closePool, type PostgresPool, postgresPool, query, transaction } from './postgres-pool.js'

export interface PostgresDriverSettings {
  /** The @keyv/postgres adapter's `opts`: its connection URI and pg pool options. */
  adapterOptions: Record<string, unknown>
  schema: string
  table: string
  commandTimeoutMs: number
  /** Longest lock wait of one statement: the time the database has for a call sent at once. */
  lockTimeoutMs: number
}

/** What every call of one driver uses. */
interface Context {
  readonly pool: PostgresPool
  readonly settings: PostgresDriverSettings
  readonly names: PostgresNames
  /** The read-only get (see `postgresGet`). */
  readonly getText: string
}

/**
 * The PostgreSQL driver: a pg `Pool` of the store's own, opened with the adapter's connection
 * options (URI, SSL, pool size, ...), with `error` listeners on the pool and on every client
 * while it is checked out, so a backend killed by `pg_terminate_backend` or a restart never
 * surfaces as an unhandled `error` event.
 *
 * Sessions are set to READ COMMITTED whatever the database's default: the functions lock the
 * rows they change, and under SERIALIZABLE every concurrent change of one counter would be a
 * serialization failure.
 */
export function createPostgresDriver(settings: PostgresDriverSettings): SqlDriver {
  const { adapterOptions, commandTimeoutMs, lockTimeoutMs } = settings
  const names = postgresNames(settings.schema, settings.table)
  const context: Context = {
    pool: postgresPool({ adapterOptions, commandTimeoutMs, lockTimeoutMs }),
    settings,
    names,
    getText: postgresGet(names),
  }
  return {
    dialect: 'postgres',
    migrate: (control) => migrate(context, control),
    now: (control) => now(context, control),
    apply: (args, deadline, control) => apply(context, args, deadline, control),
    write: (routine, deadline, control) => write(context, routine, deadline, control),
    get: (key, deadline, control) => get(context, key, deadline, control),
    classify: classifyPostgresError,
    close: () => closePool(context.pool),
  }
}

async function migrate({ pool, settings, names }: Context, control: CallControl): Promise<void> {
  const done = `SELECT to_regprocedure('${names.releaseLock}(bytea, bytea, bigint)') IS NOT NULL AS ready`
  const [row] = await query(pool, done, [], control)
  if (row?.ready === true) return
  // One transaction under one advisory lock: processes starting together neither see a
  // half-made schema nor collide on CREATE OR REPLACE ("tuple concurrently updated").
  await transaction(pool, control, async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`andromeda:${names.table}`])
    for (const statement of postgresMigration(settings.schema, settings.table)) await client.query(statement)
  })
}

async function now({ pool }: Context, control: CallControl): Promise<number> {
  const [row] = await query(pool, POSTGRES_NOW, [], control)
  return Number(row?.now_ms)
}

async function apply(
  { pool, names }: Context,
  args: ApplyArgs,
  deadline: number,
  control: CallControl,
): Promise<string> {
  const values = [
    args.keys,
    args.deltas,
    args.bounds,
    args.ttls,
    args.report,
    args.holdIds,
    args.holdMs,
    args.settleIds,
    args.keep,
    args.loadLocks,
    args.idempotencyKey,
    args.idempotencyTtlMs,
    args.clearKey,
    deadline,
  ]
  const text = `SELECT ${names.apply}($1::bytea[], $2::bigint[], $3::bigint[], $4::bigint[], $5::boolean[], $6::bytea[], $7::bigint[], $8::bytea[], $9::bigint[], $10::bytea[], $11::bytea, $12::bigint, $13::bytea, $14::bigint) AS reply`
  const [row] = await query(pool, text, values, control)
  return String(row?.reply)
}

/** The statement that calls a write routine's function, and its values. */
function writeStatement(
  names: PostgresNames,
  routine: WriteRoutine,
  deadline: number,
): { text: string; values: unknown[] } {
  switch (routine.name) {
    case 'seed':
      return {
        values: [
          routine.key,
          routine.value,
          routine.ttlMs,
          routine.load?.lock ?? null,
          routine.load?.token ?? null,
          deadline,
        ],
        text: `SELECT ${names.seed}($1::bytea, $2::bigint, $3::bigint, $4::bytea, $5::bytea, $6::bigint) AS done`,
      }
    case 'set':
      return {
        values: [routine.key, routine.value, routine.ttlMs, deadline],
        text: `SELECT ${names.set}($1::bytea, $2::bigint, $3::bigint, $4::bigint) AS done`,
      }
    case 'delete':
      return { values: [routine.key, deadline], text: `SELECT ${names.delete}($1::bytea, $2::bigint) AS done` }
    case 'acquireLock':
      return {
        values: [routine.key, routine.token, routine.ttlMs, deadline],
        text: `SELECT ${names.acquireLock}($1::bytea, $2::bytea, $3::bigint, $4::bigint) AS done`,
      }
    case 'releaseLock':
      return {
        values: [routine.key, routine.token, deadline],
        text: `SELECT ${names.releaseLock}($1::bytea, $2::bytea, $3::bigint) AS done`,
      }
  }
}

async function write(
  { pool, names }: Context,
  routine: WriteRoutine,
  deadline: number,
  control: CallControl,
): Promise<boolean> {
  const { text, values } = writeStatement(names, routine, deadline)
  const [row] = await query(pool, text, values, control)
  return row?.done === true
}

async function get(
  { pool, names, getText }: Context,
  key: Buffer,
  deadline: number,
  control: CallControl,
): Promise<RawSnapshot | undefined> {
  const [row] = await query(pool, getText, [key], control)
  if (!row) return undefined
  if (row.stale === true) {
    // Expired holds: their units come back (a write, under the row lock) before the read.
    const [fresh] = await query(pool, `SELECT ${names.get}($1::bytea, $2::bigint) AS reply`, [key, deadline], control)
    return parseGetReply(String(fresh?.reply ?? ''))
  }
  return { value: String(row.value), ttlMs: row.ttl_ms === null ? null : String(row.ttl_ms) }
}
