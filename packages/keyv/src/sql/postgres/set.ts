import type { SqlNames } from '../names.js'
import { FINISH, plpgsqlFunction, reclaim } from './parts.js'

/**
 * set: overwrite the value; a live counter keeps its lifetime, a new one gets `p_ttl`.
 *
 * Parameters: `p_key bytea`, `p_value bigint`, `p_ttl bigint` (NULL: no expiry), `p_deadline bigint`.
 * Reply (boolean): always true.
 */
export function postgresSet(n: SqlNames): string {
  const t = n.table
  const body = `
  SELECT value, expires_at INTO cur_value, cur_expires FROM ${t} WHERE storage_key = p_key FOR UPDATE;
  IF cur_value IS NOT NULL AND (cur_expires IS NULL OR cur_expires > now_ms) THEN
    UPDATE ${t} SET value = p_value WHERE storage_key = p_key;
  ELSE
    -- A counter created here starts without holds (those of an earlier counter are gone).
    DELETE FROM ${n.holds} WHERE counter_key = p_key;
    INSERT INTO ${t} (storage_key, value, expires_at) VALUES (p_key, p_value, now_ms + p_ttl)
      ON CONFLICT (storage_key) DO UPDATE SET value = excluded.value, data = NULL, expires_at = excluded.expires_at;
  END IF;${reclaim(n)}${FINISH}
  RETURN true;`
  const signature = `${n.set}(p_key bytea, p_value bigint, p_ttl bigint, p_deadline bigint)\nRETURNS boolean`
  return plpgsqlFunction(signature, ['cur_value bigint', 'cur_expires bigint'], body)
}
