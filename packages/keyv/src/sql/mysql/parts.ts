import type { SqlNames } from '../names.js'

/** Start of the message of the error raised when a call's deadline has passed in the database. */
export const DEADLINE_MESSAGE = 'andromeda: deadline passed'

/** The database clock, epoch ms, read as UTC (whatever the session's `time_zone`), as an SQL expression. */
export const NOW = `(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)`

/** The database clock, epoch ms. */
export const MYSQL_NOW = `SELECT CAST(${NOW} AS CHAR) AS now_ms`

/** The i-th (1-based) element of a comma-separated list; NULL when it is ''. */
export const item = (list: string, i: string) =>
  `NULLIF(SUBSTRING_INDEX(SUBSTRING_INDEX(${list}, ',', ${i}), ',', -1), '')`

/** Any error rolls back before it leaves the procedure: a connection never goes back to the pool in a transaction. */
export const DECLARE_HANDLER = `
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;`

/** Check the deadline, open the transaction. */
export const START = `
  SET now_ms = ${NOW};
  IF now_ms >= p_deadline THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '${DEADLINE_MESSAGE} before the call started';
  END IF;
  SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
  START TRANSACTION;`

/** The last step before the commit: past the deadline, the handler rolls everything back. */
export const COMMIT = `
  IF ${NOW} >= p_deadline THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '${DEADLINE_MESSAGE} before the commit';
  END IF;
  COMMIT;`

/** Lock (or make a placeholder for) one key. */
export const lockRow = (table: string, key: string) =>
  `INSERT INTO ${table} (storage_key) VALUES (${key}) ON DUPLICATE KEY UPDATE storage_key = storage_key;`

/** Lock one key if its row is present. */
export const lockIfPresent = (table: string, key: string) =>
  `SELECT COUNT(*) INTO present FROM ${table} WHERE storage_key = ${key} FOR UPDATE;`

/** Deletes up to two expired rows and their holds; SKIP LOCKED never waits, so it cannot deadlock. */
export const reclaim = (n: SqlNames) => `
  SET gone = NULL;
  SELECT storage_key INTO gone FROM ${n.table} WHERE expires_at <= now_ms ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED;
  IF gone IS NOT NULL THEN
    DELETE FROM ${n.table} WHERE storage_key = gone;
    DELETE FROM ${n.holds} WHERE counter_key = gone;
    SET gone = NULL;
    SELECT storage_key INTO gone FROM ${n.table} WHERE expires_at <= now_ms ORDER BY expires_at LIMIT 1 FOR UPDATE SKIP LOCKED;
    IF gone IS NOT NULL THEN
      DELETE FROM ${n.table} WHERE storage_key = gone;
      DELETE FROM ${n.holds} WHERE counter_key = gone;
    END IF;
  END IF;`

/**
 * Gives the units of a counter's expired holds back (and drops its expired settled marks), on
 * the row the caller holds locked.
 */
export const giveBackExpiredHolds = (n: SqlNames, key: string) => `
  SET units = 0;
  SELECT IFNULL(SUM(IF(settled = 0, cost, 0)), 0) INTO units FROM ${n.holds} WHERE counter_key = ${key} AND expires_at <= now_ms FOR UPDATE;
  DELETE FROM ${n.holds} WHERE counter_key = ${key} AND expires_at <= now_ms;
  IF units > 0 THEN
    UPDATE ${n.table} SET value = GREATEST(value - units, 0)
      WHERE storage_key = ${key} AND value IS NOT NULL AND (expires_at IS NULL OR expires_at > now_ms);
  END IF;`

/** A live row's columns into cur_value / cur_data / cur_expires (all NULL when absent). */
export const readRow = (table: string, key: string, locking = false) => `
  SET cur_value = NULL, cur_data = NULL, cur_expires = NULL;
  SELECT value, data, expires_at INTO cur_value, cur_data, cur_expires FROM ${table} WHERE storage_key = ${key}${locking ? ' FOR UPDATE' : ''};
  IF cur_expires IS NOT NULL AND cur_expires <= now_ms THEN
    SET cur_value = NULL, cur_data = NULL, cur_expires = NULL;
  END IF;`

/** The variables the fragments above use (`START`, `reclaim`, `giveBackExpiredHolds`, `readRow`). */
export const COMMON_DECLARATIONS = `
  DECLARE now_ms BIGINT;
  DECLARE gone VARBINARY(1024);
  DECLARE cur_value BIGINT;
  DECLARE cur_data BLOB;
  DECLARE cur_expires BIGINT;
  DECLARE units BIGINT;`

/** Lock (or make a placeholder for) one key, then read its live row; the clock is read after the lock wait. */
export const lockAndRead = (table: string, key: string) => `
  ${lockRow(table, key)}
  SET now_ms = ${NOW};${readRow(table, key)}`

/**
 * One write routine (all but apply, whose fast path commits early): `signature` is its name and
 * parameters, `variables` its own beyond `COMMON_DECLARATIONS`. It checks the deadline and opens
 * the transaction, runs `body`, checks the deadline again, commits and SELECTs `reply`; a body
 * that gives up early rolls back and LEAVEs `proc` itself.
 */
export const procedure = (signature: string, variables: string[], body: string, reply: string) =>
  `CREATE PROCEDURE IF NOT EXISTS ${signature}
proc: BEGIN${COMMON_DECLARATIONS}${variables
    .map(
      (variable) => `
  DECLARE ${variable};`,
    )
    .join('')}${DECLARE_HANDLER}${START}${body}${COMMIT}
  SELECT ${reply} AS reply;
END`
