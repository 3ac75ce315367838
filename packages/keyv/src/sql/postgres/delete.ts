import type { SqlNames } from '../names.js'
import { FINISH, plpgsqlFunction } from './parts.js'

/**
 * delete: remove the counter (or record, or lock) and its holds.
 *
 * Parameters: `p_key bytea`, `p_deadline bigint`.
 * Reply (boolean): always true.
 */
export function postgresDelete(n: SqlNames): string {
  const body = `
  DELETE FROM ${n.table} WHERE storage_key = p_key;
  DELETE FROM ${n.holds} WHERE counter_key = p_key;${FINISH}
  RETURN true;`
  return plpgsqlFunction(`${n.delete}(p_key bytea, p_deadline bigint)\nRETURNS boolean`, [], body)
}
