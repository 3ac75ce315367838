import type { SqlNames } from '../names.js'
import { FINISH, START } from './parts.js'

/**
 * delete: remove the counter (or record, or lock) and its holds.
 *
 * Parameters: `p_key bytea`, `p_deadline bigint`.
 * Reply (boolean): always true.
 */
export function postgresDelete(n: SqlNames): string {
  const t = n.table
  return `CREATE OR REPLACE FUNCTION ${n.delete}(p_key bytea, p_deadline bigint)
RETURNS boolean LANGUAGE plpgsql AS $fn$
DECLARE
  now_ms bigint;
BEGIN${START}
  DELETE FROM ${t} WHERE storage_key = p_key;
  DELETE FROM ${n.holds} WHERE counter_key = p_key;${FINISH}
  RETURN true;
END
$fn$`
}
