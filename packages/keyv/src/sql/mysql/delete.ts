import type { SqlNames } from '../names.js'
import { COMMIT, COMMON_DECLARATIONS, DECLARE_HANDLER, START } from './parts.js'

/**
 * delete: remove the counter (or record, or lock) and its holds.
 *
 * Parameters: `p_key VARBINARY`, `p_deadline BIGINT`.
 * Reply: one row, `reply` 1.
 */
export function mysqlDelete(n: SqlNames): string {
  const t = n.table
  return `CREATE PROCEDURE IF NOT EXISTS ${n.delete}(IN p_key VARBINARY(1024), IN p_deadline BIGINT)
proc: BEGIN${COMMON_DECLARATIONS}${DECLARE_HANDLER}${START}
  DELETE FROM ${t} WHERE storage_key = p_key;
  DELETE FROM ${n.holds} WHERE counter_key = p_key;${COMMIT}
  SELECT 1 AS reply;
END`
}
