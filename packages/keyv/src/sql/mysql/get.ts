import type { SqlNames } from '../names.js'
import { COMMIT, COMMON_DECLARATIONS, DECLARE_HANDLER, giveBackExpiredHolds, NOW, readRow, START } from './parts.js'

/**
 * get, when the counter has expired holds: give their units back, then read. A counter without
 * expired holds is read by `mysqlGet`, which writes nothing.
 *
 * Parameters: `p_key VARBINARY`, `p_deadline BIGINT`.
 * Reply: one row, `reply` 'value,ttl' ('' ttl: none), or '' when the counter is missing.
 */
export function mysqlGetProcedure(n: SqlNames): string {
  const t = n.table
  return `CREATE PROCEDURE IF NOT EXISTS ${n.get}(IN p_key VARBINARY(1024), IN p_deadline BIGINT)
proc: BEGIN${COMMON_DECLARATIONS}${DECLARE_HANDLER}${START}
  SELECT COUNT(*) INTO units FROM ${t} WHERE storage_key = p_key FOR UPDATE;
  SET now_ms = ${NOW};${giveBackExpiredHolds(n, 'p_key')}${readRow(t, 'p_key')}${COMMIT}
  SELECT IF(cur_value IS NULL, '', CONCAT(cur_value, ',', IFNULL(cur_expires - now_ms, ''))) AS reply;
END`
}

/**
 * Reads a counter without writing: `value` and remaining `ttl_ms` (NULL: none), no row when
 * missing; `stale` when it has expired holds, whose units the get procedure gives back first.
 * Parameter: ?, the key's bytes.
 */
export function mysqlGet(n: SqlNames): string {
  return `SELECT CAST(value AS CHAR) AS value, CAST(expires_at - clock.now_ms AS CHAR) AS ttl_ms,
  EXISTS (SELECT 1 FROM ${n.holds} WHERE counter_key = storage_key AND expires_at <= clock.now_ms AND settled = 0) AS stale
FROM ${n.table}, (SELECT ${NOW} AS now_ms) AS clock
WHERE storage_key = ? AND value IS NOT NULL AND (expires_at IS NULL OR expires_at > clock.now_ms)`
}
