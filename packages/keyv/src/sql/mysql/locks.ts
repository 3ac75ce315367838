import type { SqlNames } from '../names.js'
import { lockAndRead, NOW, procedure, reclaim } from './parts.js'

/**
 * acquire: take the lock unless a live row holds the key; 1 also when `p_token` already holds it
 * (its lifetime is not re-armed).
 *
 * Parameters: `p_key VARBINARY`, `p_token BLOB`, `p_ttl BIGINT`, `p_deadline BIGINT`.
 * Reply: one row, `reply` 1 when `p_token` holds the lock, else 0.
 */
export function mysqlAcquireLock(n: SqlNames): string {
  const t = n.table
  const body = `${lockAndRead(t, 'p_key')}
  IF cur_value IS NOT NULL OR cur_data IS NOT NULL THEN
    ROLLBACK;
    SELECT IF(cur_data = p_token, 1, 0) AS reply;
    LEAVE proc;
  END IF;
  UPDATE ${t} SET value = NULL, data = p_token, expires_at = now_ms + p_ttl WHERE storage_key = p_key;${reclaim(n)}`
  const signature = `${n.acquireLock}(IN p_key VARBINARY(1024), IN p_token BLOB, IN p_ttl BIGINT, IN p_deadline BIGINT)`
  return procedure(signature, [], body, '1')
}

/**
 * release: delete the lock only if `p_token` holds it.
 *
 * Parameters: `p_key VARBINARY`, `p_token BLOB`, `p_deadline BIGINT`.
 * Reply: one row, `reply` the number of locks released (1 or 0).
 */
export function mysqlReleaseLock(n: SqlNames): string {
  const body = `
  DELETE FROM ${n.table} WHERE storage_key = p_key AND data = p_token AND (expires_at IS NULL OR expires_at > ${NOW});
  SET released = ROW_COUNT();`
  const signature = `${n.releaseLock}(IN p_key VARBINARY(1024), IN p_token BLOB, IN p_deadline BIGINT)`
  return procedure(signature, ['released INT'], body, 'released')
}
