import type { SqlNames } from '../names.js'
import { FINISH, live, NOW, plpgsqlFunction, reclaim } from './parts.js'

/**
 * acquire: take the lock unless a live row holds the key; true also when `p_token` already holds
 * it (its lifetime is not re-armed).
 *
 * Parameters: `p_key bytea`, `p_token bytea`, `p_ttl bigint`, `p_deadline bigint`.
 * Reply (boolean): true when `p_token` holds the lock.
 */
export function postgresAcquireLock(n: SqlNames): string {
  const t = n.table
  const body = `
  INSERT INTO ${t} AS cur (storage_key, data, expires_at) VALUES (p_key, p_token, ${NOW} + p_ttl)
    ON CONFLICT (storage_key) DO UPDATE SET value = NULL, data = excluded.data, expires_at = excluded.expires_at
    WHERE NOT ${live('cur')}
    RETURNING true INTO done;
  IF done IS NULL THEN
    SELECT true INTO done FROM ${t} AS cur WHERE storage_key = p_key AND data = p_token AND ${live('cur')};
  END IF;${reclaim(n)}${FINISH}
  RETURN coalesce(done, false);`
  const signature = `${n.acquireLock}(p_key bytea, p_token bytea, p_ttl bigint, p_deadline bigint)\nRETURNS boolean`
  return plpgsqlFunction(signature, ['done boolean'], body)
}

/**
 * release: delete the lock only if `p_token` holds it.
 *
 * Parameters: `p_key bytea`, `p_token bytea`, `p_deadline bigint`.
 * Reply (boolean): true when it was released.
 */
export function postgresReleaseLock(n: SqlNames): string {
  const body = `
  DELETE FROM ${n.table} AS cur WHERE storage_key = p_key AND data = p_token AND ${live('cur')} RETURNING true INTO done;${FINISH}
  RETURN coalesce(done, false);`
  return plpgsqlFunction(
    `${n.releaseLock}(p_key bytea, p_token bytea, p_deadline bigint)\nRETURNS boolean`,
    ['done boolean'],
    body,
  )
}
