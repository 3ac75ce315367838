import type { SqlNames } from '../names.js'
import {
  COMMIT,
  COMMON_DECLARATIONS,
  DECLARE_HANDLER,
  giveBackExpiredHolds,
  item,
  lockIfPresent,
  lockRow,
  NOW,
  readRow,
  reclaim,
  START,
} from './parts.js'

/**
 * apply: the ops in order, all or nothing, with the idempotency record in the same step.
 *
 * Parameters (lists as comma-separated text, one element per op): `p_keys` (hex), `p_deltas`,
 * `p_bounds` (the max of an op with delta > 0, the min of one with delta < 0, '' for none),
 * `p_ttls`, `p_report` ('1' report a missing counter / '0' create it), `p_holds` (hex hold id or
 * ''), `p_hold_ms`, `p_settles` (hex hold id or ''), `p_keep`, `p_load_locks` (hex of the
 * loader lock of the counter of an op that gives units back, or '': deleted when the op meets
 * the counter missing, whatever the reply); `p_load_order` is those loader locks, hex, sorted,
 * distinct; `p_lock` is every other key (ops, record, record to clear), hex, sorted, distinct,
 * and `p_create` says for each ('1') whether the call may create its row. `p_idem VARBINARY` /
 * `p_idem_ttl BIGINT` the idempotency record to write (NULL: none), `p_clear VARBINARY` a record
 * to delete, `p_deadline BIGINT` the caller's deadline in the database clock.
 *
 * Reply: one row, one column `reply`, the text the PostgreSQL apply function returns
 * (`ok,...` | `same,...` | `replay,...` | `refused,...`, see postgres/apply.ts).
 */
export function mysqlApply(n: SqlNames): string {
  // One SQL statement (CREATE PROCEDURE): the procedure body reads top to bottom as it runs.
  const t = n.table
  return `CREATE PROCEDURE IF NOT EXISTS ${n.apply}(
  IN p_keys LONGTEXT, IN p_deltas LONGTEXT, IN p_bounds LONGTEXT, IN p_ttls LONGTEXT, IN p_report LONGTEXT,
  IN p_holds LONGTEXT, IN p_hold_ms LONGTEXT, IN p_settles LONGTEXT, IN p_keep LONGTEXT,
  IN p_load_locks LONGTEXT, IN p_load_order LONGTEXT, IN p_lock LONGTEXT, IN p_create LONGTEXT, IN p_idem VARBINARY(1024), IN p_idem_ttl BIGINT, IN p_clear VARBINARY(1024), IN p_deadline BIGINT)
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
  DECLARE stale INT;
  DECLARE held_loads LONGTEXT DEFAULT ',';
  DECLARE revocations INT DEFAULT 0;${DECLARE_HANDLER}
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

  -- The loader locks this call may revoke, before any counter (as seed locks them): locked until
  -- the commit, also when the ops are undone, so no load's seed lands between finding a
  -- counter missing and revoking its load. A lock taken after this is a load that started
  -- after this call: it is left alone (and never waited for).
  SET i = 1;
  WHILE p_load_order <> '' AND i <= CHAR_LENGTH(p_load_order) - CHAR_LENGTH(REPLACE(p_load_order, ',', '')) + 1 DO
    SET h = ${item('p_load_order', 'i')};
    ${lockIfPresent(t, 'UNHEX(h)')}
    IF present > 0 THEN SET held_loads = CONCAT(held_loads, h, ','); END IF;
    SET i = i + 1;
  END WHILE;
  -- A refusal that revokes loads undoes the call back to here: the placeholders go, the loader
  -- locks stay locked.
  SAVEPOINT loads_locked;
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
    -- A give-back that finds its counter missing revokes the counter's load.
    IF cur_value IS NULL AND LOCATE(CONCAT(',', ${item('p_load_locks', 'i')}, ','), held_loads) > 0 THEN
      SET revocations = revocations + 1;
    END IF;
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

  IF refused IS NOT NULL AND revocations = 0 THEN
    -- Undo everything (placeholders too).
    ROLLBACK;
    SELECT CONCAT(refused, as_found) AS reply;
    LEAVE proc;
  END IF;

  IF refused IS NOT NULL THEN
    -- Undo everything but the loader locks, and revoke the loads: whatever the reply.
    ROLLBACK TO SAVEPOINT loads_locked;${revokeHeldLoads(t)}${COMMIT}
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
  END IF;${revokeHeldLoads(t)}
  SET i = 1;
  WHILE i <= CHAR_LENGTH(p_lock) - CHAR_LENGTH(REPLACE(p_lock, ',', '')) + 1 DO
    DELETE FROM ${t} WHERE storage_key = UNHEX(${item('p_lock', 'i')})
      AND ((value IS NULL AND data IS NULL) OR expires_at <= now_ms);
    SET i = i + 1;
  END WHILE;${reclaim(n)}${COMMIT}
  SELECT reply;
END`
}

/**
 * Deletes the loader locks the call holds (`held_loads`) of the counters its give-backs found
 * missing (`absent_keys`).
 */
const revokeHeldLoads = (table: string) => `
  IF revocations > 0 THEN
    SET i = 1;
    WHILE i <= n DO
      SET h = ${item('p_load_locks', 'i')};
      IF LOCATE(CONCAT(',', h, ','), held_loads) > 0 AND LOCATE(CONCAT(',', ${item('p_keys', 'i')}, ','), absent_keys) > 0 THEN
        DELETE FROM ${table} WHERE storage_key = UNHEX(h) AND value IS NULL;
      END IF;
      SET i = i + 1;
    END WHILE;
  END IF;`
