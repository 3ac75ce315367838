import type { SqlNames } from '../names.js'
import { lockAndRead, procedure, readRow, reclaim } from './parts.js'

/**
 * seed: create the counter only if no live row holds the key, and, with `p_token`, only while
 * `p_token` holds the counter's loader lock `p_lock`: a give-back that met the missing counter
 * deleted that lock (see apply.ts), and the usage the load read may count what went back.
 *
 * Parameters: `p_key VARBINARY`, `p_value BIGINT`, `p_ttl BIGINT` (NULL: no expiry), `p_lock
 * VARBINARY`, `p_token BLOB` (both NULL: no lock to hold), `p_deadline BIGINT`.
 * Reply: one row, `reply` 1 when it was set, 0 when a live row holds the key or the lock is not
 * the token's.
 */
export function mysqlSeed(n: SqlNames): string {
  const t = n.table
  const body = `
  IF p_token IS NOT NULL THEN
    -- The lock before the counter, in the order apply takes them.${readRow(t, 'p_lock', true)}
    IF cur_value IS NOT NULL OR cur_data IS NULL OR cur_data <> p_token THEN
      ROLLBACK;
      SELECT 0 AS reply;
      LEAVE proc;
    END IF;
  END IF;${lockAndRead(t, 'p_key')}
  IF cur_value IS NOT NULL OR cur_data IS NOT NULL THEN
    ROLLBACK;
    SELECT 0 AS reply;
    LEAVE proc;
  END IF;
  UPDATE ${t} SET value = p_value, data = NULL, expires_at = now_ms + p_ttl WHERE storage_key = p_key;
  DELETE FROM ${n.holds} WHERE counter_key = p_key;${reclaim(n)}`
  const signature = `${n.seed}(
  IN p_key VARBINARY(1024), IN p_value BIGINT, IN p_ttl BIGINT, IN p_lock VARBINARY(1024), IN p_token BLOB, IN p_deadline BIGINT)`
  return procedure(signature, [], body, '1')
}
