import type { SqlNames } from '../names.js'
import { FINISH, live, NOW, plpgsqlFunction, reclaim } from './parts.js'

/**
 * seed: create the counter only if no live row holds the key, and, with `p_token`, only while
 * `p_token` holds the counter's loader lock `p_lock`: a give-back that met the missing counter
 * deleted that lock (see apply.ts), and the usage the load read may count what went back.
 *
 * Parameters: `p_key bytea`, `p_value bigint`, `p_ttl bigint` (NULL: no expiry), `p_lock bytea`,
 * `p_token bytea` (both NULL: no lock to hold), `p_deadline bigint`.
 * Reply (boolean): true when it was set.
 */
export function postgresSeed(n: SqlNames): string {
  const t = n.table
  const body = `
  IF p_token IS NOT NULL THEN
    -- The lock before the counter, in the order apply takes them; shared, as seeds do not conflict.
    PERFORM 1 FROM ${t} AS cur WHERE storage_key = p_lock AND value IS NULL AND data = p_token AND ${live('cur')} FOR SHARE;
    IF NOT FOUND THEN RETURN false; END IF;
  END IF;
  INSERT INTO ${t} AS cur (storage_key, value, expires_at) VALUES (p_key, p_value, ${NOW} + p_ttl)
    ON CONFLICT (storage_key) DO UPDATE SET value = excluded.value, data = NULL, expires_at = excluded.expires_at
    WHERE NOT ${live('cur')}
    RETURNING true INTO done;
  IF done THEN
    DELETE FROM ${n.holds} WHERE counter_key = p_key;
  END IF;${reclaim(n)}${FINISH}
  RETURN coalesce(done, false);`
  const signature = `${n.seed}(
  p_key bytea, p_value bigint, p_ttl bigint, p_lock bytea, p_token bytea, p_deadline bigint
) RETURNS boolean`
  return plpgsqlFunction(signature, ['done boolean'], body)
}
