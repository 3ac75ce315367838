import type { SqlNames } from '../names.js'

/** SQLSTATE raised when a call's deadline has passed in the database. */
export const DEADLINE_SQLSTATE = 'QA001'
/** SQLSTATE used inside `apply` to undo a refused or replayed call (never leaves the function). */
export const UNDO_SQLSTATE = 'QA002'

/** The database clock, epoch ms, as an SQL expression. */
export const NOW = `floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint`

/** The database clock, epoch ms. */
export const POSTGRES_NOW = `SELECT ${NOW}::text AS now_ms`

/** A call that arrives after its deadline (it waited for a connection) changes nothing. */
export const START = `
  now_ms := ${NOW};
  IF now_ms >= p_deadline THEN
    RAISE EXCEPTION 'andromeda: deadline passed before the call started' USING ERRCODE = '${DEADLINE_SQLSTATE}';
  END IF;`

/** The last step before the commit: past the deadline, everything is rolled back. */
export const FINISH = `
  IF ${NOW} >= p_deadline THEN
    RAISE EXCEPTION 'andromeda: deadline passed before the commit' USING ERRCODE = '${DEADLINE_SQLSTATE}';
  END IF;`

/** The row under `alias` holds something and has not expired. */
export const live = (alias: string) =>
  `((${alias}.value IS NOT NULL OR ${alias}.data IS NOT NULL) AND (${alias}.expires_at IS NULL OR ${alias}.expires_at > ${NOW}))`

/** Deletes up to two expired rows (and their holds); never waits for a lock, so it cannot deadlock. */
export const reclaim = (n: SqlNames) => `
  WITH gone AS (
    DELETE FROM ${n.table} WHERE storage_key IN (
      SELECT storage_key FROM ${n.table} WHERE expires_at <= now_ms ORDER BY expires_at LIMIT 2 FOR UPDATE SKIP LOCKED
    ) RETURNING storage_key
  ) DELETE FROM ${n.holds} WHERE counter_key IN (SELECT storage_key FROM gone);`

/**
 * Gives the units of a counter's expired holds back (and drops its expired settled marks), on
 * the row the caller holds locked. Needs a `units bigint` variable.
 */
export const giveBackExpiredHolds = (n: SqlNames, key: string) => `
  WITH gone AS (DELETE FROM ${n.holds} WHERE counter_key = ${key} AND expires_at <= now_ms RETURNING cost, settled)
    SELECT coalesce(sum(cost) FILTER (WHERE NOT settled), 0) INTO units FROM gone;
  IF units > 0 THEN
    UPDATE ${n.table} SET value = greatest(value - units, 0)
      WHERE storage_key = ${key} AND value IS NOT NULL AND (expires_at IS NULL OR expires_at > now_ms);
  END IF;`

/**
 * One function: `signature` is its name, parameters and RETURNS, `variables` its own beyond
 * `now_ms`. It checks the deadline first, then runs `body`, which ends with its own `FINISH`
 * check where the function's writes end.
 */
export const plpgsqlFunction = (signature: string, variables: string[], body: string) =>
  `CREATE OR REPLACE FUNCTION ${signature} LANGUAGE plpgsql AS $fn$
DECLARE
${['now_ms bigint', ...variables].map((variable) => `  ${variable};\n`).join('')}BEGIN${START}${body}
END
$fn$`
