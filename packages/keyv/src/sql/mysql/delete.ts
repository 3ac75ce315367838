import type { SqlNames } from '../names.js'
import { procedure } from './parts.js'

/**
 * delete: remove the counter (or record, or lock) and its holds.
 *
 * Parameters: `p_key VARBINARY`, `p_deadline BIGINT`.
 * Reply: one row, `reply` 1.
 */
export function mysqlDelete(n: SqlNames): string {
  const body = `
  DELETE FROM ${n.table} WHERE storage_key = p_key;
  DELETE FROM ${n.holds} WHERE counter_key = p_key;`
  return procedure(`${n.delete}(IN p_key VARBINARY(1024), IN p_deadline BIGINT)`, [], body, '1')
}
