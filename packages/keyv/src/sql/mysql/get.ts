import type { SqlNames } from '../names.js'
import { giveBackExpiredHolds, NOW, procedure, readRow } from './parts.js'

/**
 * get, when the counter has expired holds: give their units back, then read. A counter without
 * expired holds is read by `mysqlGet`, which writes nothing.
 *
 * Parameters: `p_key VARBINARY`, `p_deadline BIGINT`.
 * Reply: one row, `reply` 'value,ttl' ('' ttl: none), or '' when the counter is missing.
 */
export function mysqlGetProcedure(n: SqlNames): string {
  const body = `
  SELECT COUNT(*) INTO units FROM ${n.table} WHERE storage_key = p_key FOR UPDATE;
  SET now_ms = ${NOW};${giveBackExpiredHolds(n, 'p_key')}${readRow(n.table, 'p_key')}`
  const reply = `IF(cur_value IS NULL, '', CONCAT(cur_value, ',', IFNULL(cur_expires - now_ms, '')))`
  return procedure(`${n.get}(IN p_key VARBINARY(1024), IN p_deadline BIGINT)`, [], body, reply)
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
