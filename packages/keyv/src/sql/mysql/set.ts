import type { SqlNames } from '../names.js'
import { lockAndRead, procedure, reclaim } from './parts.js'

/**
 * set: overwrite the value; a live counter keeps its lifetime, a new one gets `p_ttl`.
 *
 * Parameters: `p_key VARBINARY`, `p_value BIGINT`, `p_ttl BIGINT` (NULL: no expiry), `p_deadline BIGINT`.
 * Reply: one row, `reply` 1.
 */
export function mysqlSet(n: SqlNames): string {
  const t = n.table
  const body = `${lockAndRead(t, 'p_key')}
  IF cur_value IS NOT NULL THEN
    UPDATE ${t} SET value = p_value WHERE storage_key = p_key;
  ELSE
    -- A counter created here starts without holds (those of an earlier counter are gone).
    UPDATE ${t} SET value = p_value, data = NULL, expires_at = now_ms + p_ttl WHERE storage_key = p_key;
    DELETE FROM ${n.holds} WHERE counter_key = p_key;
  END IF;${reclaim(n)}`
  const signature = `${n.set}(IN p_key VARBINARY(1024), IN p_value BIGINT, IN p_ttl BIGINT, IN p_deadline BIGINT)`
  return procedure(signature, [], body, '1')
}
