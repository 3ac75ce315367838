/**
 * The MySQL / MariaDB table and procedures of the SQL path. Every contract call that writes is
 * one `CALL` of one procedure, which runs one transaction on its connection: atomic for every
 * session. Written in the syntax MariaDB 10.6+ and MySQL 8.0.29+ share.
 *
 * Conventions shared by every procedure (see postgres-schema.ts for the same rules there):
 * - Times are epoch ms of the database clock, read as UTC (independent of the session's
 *   `time_zone`); `expires_at` NULL means no expiry. A row is live when it holds something
 *   (`value` or `data`) and has not expired; anything else reads as missing.
 * - `p_deadline` is the caller's deadline in the database clock: a call that starts at or after
 *   it changes nothing, and a call that reaches its commit after it is rolled back. Both raise
 *   SQLSTATE 45000 with a message starting `andromeda: deadline passed`. Lock waits are bounded
 *   by the store's sessions (`innodb_lock_wait_timeout`, whole seconds, set when a connection
 *   opens).
 * - Keys are locked in one order, by key bytes: a present row with `SELECT ... FOR UPDATE`, a
 *   missing one that the call may create with `INSERT ... ON DUPLICATE KEY UPDATE` (a
 *   placeholder row, which also locks a row another session created meanwhile). A missing key
 *   the call only reads or reports gets no placeholder: many sessions inserting one row and
 *   rolling it back is InnoDB's classic deadlock. A call that writes nothing rolls back.
 * - Any error rolls the transaction back before it leaves the procedure, so a connection never
 *   goes back to the pool inside a transaction.
 * - Lists arrive as comma-separated text (keys as hex, integers in decimal, '' for none), built
 *   by the store from checked integers: the procedures parse them with SUBSTRING_INDEX.
 * - Each call that may create a row (all but a plain consume or refund of a live counter) also
 *   deletes up to two expired rows of other keys, oldest first, skipping locked ones.
 */

const VERSION = 'v1'
/** Start of the message of the error raised when a call's deadline has passed in the database. */
export const DEADLINE_MESSAGE = 'andromeda: deadline passed'

const NOW = `(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)`

export interface MysqlNames {
  table: string
  /** The holds (reservations) of the counters. */
  holds: string
  apply: string
  get: string
  seed: string
  set: string
  delete: string
  acquireLock: string
  releaseLock: string
}

const quote = (identifier: string) => `\`${identifier}\``

export function mysqlNames(table: string): MysqlNames {
  return {
    table: quote(table),
    holds: quote(`${table}_holds`),
    apply: quote(`${table}_apply_${VERSION}`),
    get: quote(`${table}_get_${VERSION}`),
    seed: quote(`${table}_seed_${VERSION}`),
    set: quote(`${table}_set_${VERSION}`),
    delete: quote(`${table}_delete_${VERSION}`),
    acquireLock: quote(`${table}_lock_${VERSION}`),
    releaseLock: quote(`${table}_unlock_${VERSION}`),
  }
}

/** The i-th (1-based) element of a comma-separated list; NULL when it is ''. */
const item = (list: string, i: string) => `NULLIF(SUBSTRING_INDEX(SUBSTRING_INDEX(${list}, ',', ${i}), ',', -1), '')`

const DECLARE_HANDLER = `
  DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;`

/** Check the deadline, open the transaction. */
const START = `
  SET now_ms = ${NOW};
  IF now_ms >= p_deadline THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '${DEADLINE_MESSAGE} before the call started';
  END IF;
  SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
  START TRANSACTION;`

/** The last step before the commit: past the deadline, the handler rolls everything back. */
const COMMIT = `
  IF ${NOW} >= p_deadline THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = '${DEADLINE_MESSAGE} before the commit';
  END IF;
  COMMIT;`

/** Lock (or make a placeholder for) one key. */
const lockRow = (table: string, key: string) =>
  `INSERT INTO ${table} (storage_key) VALUES (${key}) ON DUPLICATE KEY UPDATE storage_key = storage_key;`

/** Lock one key if its row is present. */
const lockIfPresent = (table: string, key: string) => `SELECT COUNT(*) INTO present FROM ${table} WHERE storage_key = ${key} FOR UPDATE;`

/** Deletes up to two expired rows and their holds; SKIP LOCKED never waits, so it cannot deadlock. */
const reclaim = (n: MysqlNames) => `
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
const giveBackExpiredHolds = (n: MysqlNames, key: string) => `
  SET units = 0;
  SELECT IFNULL(SUM(IF(settled = 0, cost, 0)), 0) INTO units FROM ${n.holds} WHERE counter_key = ${key} AND expires_at <= now_ms FOR UPDATE;
  DELETE FROM ${n.holds} WHERE counter_key = ${key} AND expires_at <= now_ms;
  IF units > 0 THEN
    UPDATE ${n.table} SET value = GREATEST(value - units, 0)
      WHERE storage_key = ${key} AND value IS NOT NULL AND (expires_at IS NULL OR expires_at > now_ms);
  END IF;`

/** A live row's columns into cur_value / cur_data / cur_expires (all NULL when absent). */
const readRow = (table: string, key: string, locking = false) => `
  SET cur_value = NULL, cur_data = NULL, cur_expires = NULL;
  SELECT value, data, expires_at INTO cur_value, cur_data, cur_expires FROM ${table} WHERE storage_key = ${key}${locking ? ' FOR UPDATE' : ''};
  IF cur_expires IS NOT NULL AND cur_expires <= now_ms THEN
    SET cur_value = NULL, cur_data = NULL, cur_expires = NULL;
  END IF;`

const COMMON_DECLARATIONS = `
  DECLARE now_ms BIGINT;
  DECLARE gone VARBINARY(1024);
  DECLARE cur_value BIGINT;
  DECLARE cur_data BLOB;
  DECLARE cur_expires BIGINT;
  DECLARE units BIGINT;`

/**
 * The statements that create the table and procedures, in order; each is idempotent (`IF NOT
 * EXISTS`), so running them again changes nothing.
 */
export function mysqlMigration(table: string): string[] {
  const n = mysqlNames(table)
  const t = n.table
  return [
    `CREATE TABLE IF NOT EXISTS ${t} (
  storage_key VARBINARY(1024) NOT NULL PRIMARY KEY,
  value BIGINT NULL,
  data BLOB NULL,
  expires_at BIGINT NULL,
  KEY ${quote(`${table}_expires_at`)} (expires_at)
) ENGINE = InnoDB`,
    // A hold's units are part of its counter's value until it is settled (then a settled mark
    // stays for holdMs, so settling again replays) or expires (then they are given back).
    `CREATE TABLE IF NOT EXISTS ${n.holds} (
  counter_key VARBINARY(1024) NOT NULL,
  hold_id VARBINARY(1024) NOT NULL,
  cost BIGINT NOT NULL,
  hold_ms BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  settled TINYINT NOT NULL DEFAULT 0,
  PRIMARY KEY (counter_key, hold_id)
) ENGINE = InnoDB`,

    // apply: the ops in order, all or nothing, with the idempotency record in the same step.
    // p_keys (hex), p_deltas, p_bounds, p_ttls, p_report ('1' report / '0' create) hold one
    // element per op, and so do p_holds (hex hold id or ''), p_hold_ms, p_settles (hex hold id
    // or ''), p_keep; p_lock is every key (ops, record, record to clear), hex, sorted, distinct,
    // and p_create says for each ('1') whether the call may create its row.
    // Reply: one row, one column, the text described in postgres-schema.ts.
    `CREATE PROCEDURE IF NOT EXISTS ${n.apply}(
  IN p_keys LONGTEXT, IN p_deltas LONGTEXT, IN p_bounds LONGTEXT, IN p_ttls LONGTEXT, IN p_report LONGTEXT,
  IN p_holds LONGTEXT, IN p_hold_ms LONGTEXT, IN p_settles LONGTEXT, IN p_keep LONGTEXT,
  IN p_lock LONGTEXT, IN p_create LONGTEXT, IN p_idem VARBINARY(1024), IN p_idem_ttl BIGINT, IN p_clear VARBINARY(1024), IN p_deadline BIGINT)
proc: BEGIN${COMMON_DECLARATIONS}
  DECLARE n INT DEFAULT 0;
  DECLARE i INT DEFAULT 0;
  DECLARE k VARBINARY(1024);
  DECLARE delta BIGINT;
  DECLARE bound BIGINT;
  DECLARE nxt BIGINT;
  DECLARE is_live INT;
  DECLARE present INT;
  DECLARE reply LONGTEXT DEFAULT 'ok';
  DECLARE refused LONGTEXT DEFAULT NULL;
  DECLARE as_found LONGTEXT DEFAULT '';
  DECLARE unknown_keys LONGTEXT DEFAULT ',';
  DECLARE absent_keys LONGTEXT DEFAULT ',';
  DECLARE created_keys LONGTEXT DEFAULT ',';
  DECLARE missing_at INT DEFAULT -1;
  DECLARE h LONGTEXT;
  DECLARE held BIGINT;
  DECLARE was_settled INT;
  DECLARE replays INT DEFAULT 0;
  DECLARE stale INT;${DECLARE_HANDLER}
  SET n = CHAR_LENGTH(p_keys) - CHAR_LENGTH(REPLACE(p_keys, ',', '')) + 1;${START}

  -- One op on a live counter, no idempotency record (a plain consume or refund): the check and
  -- the add are one UPDATE on the locked row; a refusal by its value needs no lock. Anything
  -- else goes the general way below.
  IF n = 1 AND p_idem IS NULL AND p_clear IS NULL AND CAST(p_deltas AS SIGNED) <> 0 AND p_holds = '' AND p_settles = '' THEN
    SET k = UNHEX(p_keys), delta = CAST(p_deltas AS SIGNED), bound = CAST(NULLIF(p_bounds, '') AS SIGNED);
    UPDATE ${t} SET value = value + delta
      WHERE storage_key = k AND value IS NOT NULL AND (expires_at IS NULL OR expires_at > ${NOW})
        AND (delta < 0 OR (value + delta <= 9007199254740991 AND (bound IS NULL OR value + delta <= bound)))
        AND (delta > 0 OR bound IS NULL OR value + delta >= bound);
    IF ROW_COUNT() = 1 THEN
      SELECT value, expires_at INTO cur_value, cur_expires FROM ${t} WHERE storage_key = k;${COMMIT}
      SELECT CONCAT('ok,', cur_value, ',', IFNULL(GREATEST(cur_expires - ${NOW}, 1), '')) AS reply;
      LEAVE proc;
    END IF;
    -- Refused by the value a live counter holds now (a sold-out flash sale): say so without
    -- taking a lock, as a refusal changes nothing.
    SET now_ms = ${NOW};${readRow(t, 'k')}
    -- (Expired holds would give units back first: those calls go the general way.)
    SELECT COUNT(*) INTO stale FROM ${n.holds} WHERE counter_key = k AND expires_at <= now_ms AND settled = 0;
    IF cur_value IS NOT NULL AND stale = 0 THEN
      SET nxt = cur_value + delta;
      IF (delta > 0 AND (nxt > 9007199254740991 OR nxt > bound)) OR (delta < 0 AND nxt < bound) THEN
        ROLLBACK;
        SELECT CONCAT('refused,0,', IF(delta > 0, 'limit', 'floor'), ',', cur_value, ',', IFNULL(cur_expires - now_ms, '')) AS reply;
        LEAVE proc;
      END IF;
    END IF;
  END IF;

  SET i = 1;
  WHILE i <= CHAR_LENGTH(p_lock) - CHAR_LENGTH(REPLACE(p_lock, ',', '')) + 1 DO
    IF ${item('p_create', 'i')} = '1' THEN
      ${lockRow(t, `UNHEX(${item('p_lock', 'i')})`)}
    ELSE
      ${lockIfPresent(t, `UNHEX(${item('p_lock', 'i')})`)}
    END IF;
    SET i = i + 1;
  END WHILE;
  SET now_ms = ${NOW};

  IF p_idem IS NOT NULL THEN${readRow(t, 'p_idem')}
    IF cur_data IS NOT NULL THEN
      ROLLBACK;
      SELECT CONCAT('replay,', now_ms, ',', CONVERT(cur_data USING utf8mb4)) AS reply;
      LEAVE proc;
    END IF;
  END IF;

  -- Expired holds give their units back before anything is decided on those counters.
  SET i = 1;
  WHILE i <= CHAR_LENGTH(p_lock) - CHAR_LENGTH(REPLACE(p_lock, ',', '')) + 1 DO
    SET k = UNHEX(${item('p_lock', 'i')});${giveBackExpiredHolds(n, 'k')}
    SET i = i + 1;
  END WHILE;

  -- The counters as they stand (locking reads: a row another session created after the lock
  -- loop is locked now), for a refusal: what it reports must be what it decided on. A key
  -- without a row here has no lock either (no placeholder for a key the call cannot create),
  -- so another session may create it before the ops read it: the ops take it as missing still.
  SET i = 1;
  WHILE i <= n DO
    SET h = ${item('p_keys', 'i')};
    SET k = UNHEX(h);${readRow(t, 'k', true)}
    SET as_found = CONCAT(as_found, ',', IFNULL(cur_value, ''), ',', IF(cur_value IS NULL, '', IFNULL(cur_expires - now_ms, '')));
    IF cur_value IS NULL THEN SET absent_keys = CONCAT(absent_keys, h, ','); END IF;
    SET i = i + 1;
  END WHILE;

  -- A missing counter to report is reported only when no other op is refused (loading it
  -- could not make the call fit); later ops on its key are skipped meanwhile.
  SET i = 0;
  ops: WHILE i < n DO
    SET i = i + 1;
    SET h = ${item('p_keys', 'i')};
    IF LOCATE(CONCAT(',', h, ','), unknown_keys) > 0 THEN ITERATE ops; END IF;
    SET k = UNHEX(h);
    SET delta = CAST(${item('p_deltas', 'i')} AS SIGNED);
    SET bound = CAST(${item('p_bounds', 'i')} AS SIGNED);${readRow(t, 'k', true)}
    SET is_live = cur_value IS NOT NULL
      AND (LOCATE(CONCAT(',', h, ','), absent_keys) = 0 OR LOCATE(CONCAT(',', h, ','), created_keys) > 0);
    IF NOT is_live THEN
      IF ${item('p_report', 'i')} = '1' THEN
        IF missing_at < 0 THEN SET missing_at = i - 1; END IF;
        SET unknown_keys = CONCAT(unknown_keys, h, ',');
        ITERATE ops;
      END IF;
      IF ${item('p_settles', 'i')} IS NULL THEN SET cur_value = 0; END IF;
    END IF;
    IF ${item('p_settles', 'i')} IS NOT NULL THEN
      -- A live hold of a live counter: keep p_keep of its units, give the rest back.
      SET held = NULL, was_settled = NULL;
      IF is_live THEN
        SELECT cost, settled INTO held, was_settled FROM ${n.holds}
          WHERE counter_key = k AND hold_id = UNHEX(${item('p_settles', 'i')}) AND expires_at > now_ms FOR UPDATE;
      END IF;
      IF held IS NULL THEN SET refused = CONCAT('refused,', i - 1, ',hold'); LEAVE ops; END IF;
      IF was_settled = 1 THEN
        SET replays = replays + 1;
        ITERATE ops;
      END IF;
      UPDATE ${t} SET value = GREATEST(value - (held - LEAST(CAST(${item('p_keep', 'i')} AS SIGNED), held)), 0) WHERE storage_key = k;
      UPDATE ${n.holds} SET settled = 1, expires_at = now_ms + hold_ms WHERE counter_key = k AND hold_id = UNHEX(${item('p_settles', 'i')});
      ITERATE ops;
    END IF;
    SET nxt = cur_value + delta;
    IF delta > 0 AND (nxt > 9007199254740991 OR nxt > bound) THEN SET refused = CONCAT('refused,', i - 1, ',limit'); LEAVE ops; END IF;
    IF delta < 0 AND nxt < bound THEN SET refused = CONCAT('refused,', i - 1, ',floor'); LEAVE ops; END IF;
    IF delta <> 0 THEN
      IF is_live THEN
        UPDATE ${t} SET value = nxt WHERE storage_key = k;
      ELSE
        -- Created now (a placeholder, or an expired row taken over): its lifetime starts here,
        -- and holds of an earlier counter under this key are gone with it.
        UPDATE ${t} SET value = nxt, data = NULL, expires_at = now_ms + CAST(${item('p_ttls', 'i')} AS SIGNED) WHERE storage_key = k;
        DELETE FROM ${n.holds} WHERE counter_key = k;
        SET created_keys = CONCAT(created_keys, h, ',');
      END IF;
      IF ${item('p_holds', 'i')} IS NOT NULL THEN
        INSERT INTO ${n.holds} (counter_key, hold_id, cost, hold_ms, expires_at, settled)
          VALUES (k, UNHEX(${item('p_holds', 'i')}), delta, CAST(${item('p_hold_ms', 'i')} AS SIGNED),
            now_ms + CAST(${item('p_hold_ms', 'i')} AS SIGNED), 0)
          ON DUPLICATE KEY UPDATE cost = VALUES(cost), hold_ms = VALUES(hold_ms), expires_at = VALUES(expires_at), settled = 0;
      END IF;
    END IF;
  END WHILE;
  IF refused IS NULL AND missing_at >= 0 THEN SET refused = CONCAT('refused,', missing_at, ',missing'); END IF;

  IF refused IS NOT NULL THEN
    -- Undo everything (placeholders too).
    ROLLBACK;
    SELECT CONCAT(refused, as_found) AS reply;
    LEAVE proc;
  END IF;

  SET i = 1;
  WHILE i <= n DO
    SET k = UNHEX(${item('p_keys', 'i')});${readRow(t, 'k')}
    SET reply = CONCAT(reply, ',', IFNULL(cur_value, 0), ',', IF(cur_value IS NULL, '', IFNULL(cur_expires - now_ms, '')));
    SET i = i + 1;
  END WHILE;
  -- Every op settled a hold settled before: nothing changed, said as a replay.
  IF replays = n THEN SET reply = CONCAT('same', SUBSTRING(reply, 3)); END IF;
  IF p_clear IS NOT NULL THEN
    DELETE FROM ${t} WHERE storage_key = p_clear;
  END IF;
  IF p_idem IS NOT NULL THEN
    -- The record keeps its write time, so a replay can report each lifetime as it is then.
    UPDATE ${t} SET value = NULL, data = CONCAT(now_ms, SUBSTRING(reply, 3)), expires_at = now_ms + p_idem_ttl WHERE storage_key = p_idem;
  END IF;
  SET i = 1;
  WHILE i <= CHAR_LENGTH(p_lock) - CHAR_LENGTH(REPLACE(p_lock, ',', '')) + 1 DO
    DELETE FROM ${t} WHERE storage_key = UNHEX(${item('p_lock', 'i')})
      AND ((value IS NULL AND data IS NULL) OR expires_at <= now_ms);
    SET i = i + 1;
  END WHILE;${reclaim(n)}${COMMIT}
  SELECT reply;
END`,

    // seed: create the counter only if no live row holds the key. Reply: 1 when it was set.
    `CREATE PROCEDURE IF NOT EXISTS ${n.seed}(IN p_key VARBINARY(1024), IN p_value BIGINT, IN p_ttl BIGINT, IN p_deadline BIGINT)
proc: BEGIN${COMMON_DECLARATIONS}${DECLARE_HANDLER}${START}
  ${lockRow(t, 'p_key')}
  SET now_ms = ${NOW};${readRow(t, 'p_key')}
  IF cur_value IS NOT NULL OR cur_data IS NOT NULL THEN
    ROLLBACK;
    SELECT 0 AS reply;
    LEAVE proc;
  END IF;
  UPDATE ${t} SET value = p_value, data = NULL, expires_at = now_ms + p_ttl WHERE storage_key = p_key;
  DELETE FROM ${n.holds} WHERE counter_key = p_key;${reclaim(n)}${COMMIT}
  SELECT 1 AS reply;
END`,

    // set: overwrite the value; a live counter keeps its lifetime, a new one gets p_ttl.
    `CREATE PROCEDURE IF NOT EXISTS ${n.set}(IN p_key VARBINARY(1024), IN p_value BIGINT, IN p_ttl BIGINT, IN p_deadline BIGINT)
proc: BEGIN${COMMON_DECLARATIONS}${DECLARE_HANDLER}${START}
  ${lockRow(t, 'p_key')}
  SET now_ms = ${NOW};${readRow(t, 'p_key')}
  IF cur_value IS NOT NULL THEN
    UPDATE ${t} SET value = p_value WHERE storage_key = p_key;
  ELSE
    -- A counter created here starts without holds (those of an earlier counter are gone).
    UPDATE ${t} SET value = p_value, data = NULL, expires_at = now_ms + p_ttl WHERE storage_key = p_key;
    DELETE FROM ${n.holds} WHERE counter_key = p_key;
  END IF;${reclaim(n)}${COMMIT}
  SELECT 1 AS reply;
END`,

    `CREATE PROCEDURE IF NOT EXISTS ${n.delete}(IN p_key VARBINARY(1024), IN p_deadline BIGINT)
proc: BEGIN${COMMON_DECLARATIONS}${DECLARE_HANDLER}${START}
  DELETE FROM ${t} WHERE storage_key = p_key;
  DELETE FROM ${n.holds} WHERE counter_key = p_key;${COMMIT}
  SELECT 1 AS reply;
END`,

    // get, when the counter has expired holds: give their units back, then read. Reply:
    // 'value,ttl' ('' ttl: none), or '' when the counter is missing.
    `CREATE PROCEDURE IF NOT EXISTS ${n.get}(IN p_key VARBINARY(1024), IN p_deadline BIGINT)
proc: BEGIN${COMMON_DECLARATIONS}${DECLARE_HANDLER}${START}
  SELECT COUNT(*) INTO units FROM ${t} WHERE storage_key = p_key FOR UPDATE;
  SET now_ms = ${NOW};${giveBackExpiredHolds(n, 'p_key')}${readRow(t, 'p_key')}${COMMIT}
  SELECT IF(cur_value IS NULL, '', CONCAT(cur_value, ',', IFNULL(cur_expires - now_ms, ''))) AS reply;
END`,

    // acquire: take the lock unless a live row holds the key; 1 also when p_token already holds
    // it (its lifetime is not re-armed).
    `CREATE PROCEDURE IF NOT EXISTS ${n.acquireLock}(IN p_key VARBINARY(1024), IN p_token BLOB, IN p_ttl BIGINT, IN p_deadline BIGINT)
proc: BEGIN${COMMON_DECLARATIONS}${DECLARE_HANDLER}${START}
  ${lockRow(t, 'p_key')}
  SET now_ms = ${NOW};${readRow(t, 'p_key')}
  IF cur_value IS NOT NULL OR cur_data IS NOT NULL THEN
    ROLLBACK;
    SELECT IF(cur_data = p_token, 1, 0) AS reply;
    LEAVE proc;
  END IF;
  UPDATE ${t} SET value = NULL, data = p_token, expires_at = now_ms + p_ttl WHERE storage_key = p_key;${reclaim(n)}${COMMIT}
  SELECT 1 AS reply;
END`,

    // release: delete the lock only if p_token holds it.
    `CREATE PROCEDURE IF NOT EXISTS ${n.releaseLock}(IN p_key VARBINARY(1024), IN p_token BLOB, IN p_deadline BIGINT)
proc: BEGIN${COMMON_DECLARATIONS}
  DECLARE released INT;${DECLARE_HANDLER}${START}
  DELETE FROM ${t} WHERE storage_key = p_key AND data = p_token AND (expires_at IS NULL OR expires_at > ${NOW});
  SET released = ROW_COUNT();${COMMIT}
  SELECT released AS reply;
END`,
  ]
}

/**
 * Reads a counter without writing: `value` and remaining `ttl_ms` (NULL: none), no row when
 * missing; `stale` when it has expired holds, whose units the get procedure gives back first.
 */
export function mysqlGet(table: string): string {
  const n = mysqlNames(table)
  return `SELECT CAST(value AS CHAR) AS value, CAST(expires_at - clock.now_ms AS CHAR) AS ttl_ms,
  EXISTS (SELECT 1 FROM ${n.holds} WHERE counter_key = storage_key AND expires_at <= clock.now_ms AND settled = 0) AS stale
FROM ${n.table}, (SELECT ${NOW} AS now_ms) AS clock
WHERE storage_key = ? AND value IS NOT NULL AND (expires_at IS NULL OR expires_at > clock.now_ms)`
}

/** The database clock, epoch ms. */
export const MYSQL_NOW = `SELECT CAST(${NOW} AS CHAR) AS now_ms`
