import { dialectDriver, type RoutineName } from './dialect.js'
import type { ApplyArgs, CallControl, SqlDriver } from './driver.js'
import type { SqlNames } from './names.js'
import { postgresGet } from './postgres/get.js'
import { postgresMigration } from './postgres/migration.js'
import { postgresNames } from './postgres/names.js'
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

/**
 * Each function's parameter types, in order (see the functions in postgres/): a call casts every
 * value, as pg sends them untyped.
 */
const PARAMETERS: Record<RoutineName, readonly string[]> = {
  // biome-ignore format: one line, as in the function's declaration
  apply: ['bytea[]', 'bigint[]', 'bigint[]', 'bigint[]', 'boolean[]', 'bytea[]', 'bigint[]', 'bytea[]', 'bigint[]', 'bytea[]', 'bytea', 'bigint', 'bytea', 'bigint'],
  get: ['bytea', 'bigint'],
  seed: ['bytea', 'bigint', 'bigint', 'bytea', 'bytea', 'bigint'],
  set: ['bytea', 'bigint', 'bigint', 'bigint'],
  delete: ['bytea', 'bigint'],
  acquireLock: ['bytea', 'bytea', 'bigint', 'bigint'],
  releaseLock: ['bytea', 'bytea', 'bigint'],
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
  const pool = postgresPool({ adapterOptions, commandTimeoutMs, lockTimeoutMs })
  const calls = {} as Record<RoutineName, string>
  for (const [routine, types] of Object.entries(PARAMETERS) as [RoutineName, readonly string[]][])
    calls[routine] = `SELECT ${names[routine]}(${types.map((type, i) => `$${i + 1}::${type}`).join(', ')}) AS reply`
  return dialectDriver({
    name: 'postgres',
    nowText: POSTGRES_NOW,
    getText: postgresGet(names),
    rows: (text, values, control) => query(pool, text, values, control),
    call: async (routine, values, control) => (await query(pool, calls[routine], values, control))[0]?.reply,
    applyValues,
    migrate: (control) => migrate(pool, settings, names, control),
    classify: classifyPostgresError,
    close: () => closePool(pool),
  })
}

async function migrate(
  pool: PostgresPool,
  { schema, table }: PostgresDriverSettings,
  names: SqlNames,
  control: CallControl,
): Promise<void> {
  const done = `SELECT to_regprocedure('${names.releaseLock}(${PARAMETERS.releaseLock.join(', ')})') IS NOT NULL AS ready`
  const [row] = await query(pool, done, [], control)
  if (row?.ready === true) return
  // One transaction under one advisory lock: processes starting together neither see a
  // half-made schema nor collide on CREATE OR REPLACE ("tuple concurrently updated").
  await transaction(pool, control, async (client) => {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`andromeda:${names.table}`])
    for (const statement of postgresMigration(schema, table)) await client.query(statement)
  })
}

/** The apply function's arguments: the op lists as arrays (see postgres/apply.ts). */
function applyValues(args: ApplyArgs, deadline: number): unknown[] {
  return [
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
}
