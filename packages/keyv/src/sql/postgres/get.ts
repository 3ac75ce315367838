import type { SqlNames } from '../names.js'
import { FINISH, giveBackExpiredHolds, NOW, plpgsqlFunction } from './parts.js'

/**
 * get, when the counter has expired holds: give their units back, then read. A counter without
 * expired holds is read by `postgresGet`, which writes nothing.
 *
 * Parameters: `p_key bytea`, `p_deadline bigint`.
 * Reply (text): 'value,ttl' ('' ttl: none), or '' when the counter is missing.
 */
export function postgresGetFunction(n: SqlNames): string {
  const t = n.table
  const body = `
  SELECT value, expires_at INTO cur_value, cur_expires FROM ${t} WHERE storage_key = p_key FOR UPDATE;
  now_ms := ${NOW};${giveBackExpiredHolds(n, 'p_key')}
  SELECT value, expires_at INTO cur_value, cur_expires FROM ${t} WHERE storage_key = p_key;${FINISH}
  IF cur_value IS NULL OR (cur_expires IS NOT NULL AND cur_expires <= now_ms) THEN RETURN ''; END IF;
  RETURN cur_value || ',' || coalesce((cur_expires - now_ms)::text, '');`
  const variables = ['units bigint', 'cur_value bigint', 'cur_expires bigint']
  return plpgsqlFunction(`${n.get}(p_key bytea, p_deadline bigint)\nRETURNS text`, variables, body)
}

/**
 * Reads a counter without writing: `value` and remaining `ttl_ms` (NULL: none), no row when
 * missing; `stale` when it has expired holds, whose units the get function gives back first.
 * Parameter: $1, the key's bytes.
 */
export function postgresGet(n: SqlNames): string {
  return `SELECT value::text AS value, (expires_at - now_ms)::text AS ttl_ms,
  EXISTS (SELECT 1 FROM ${n.holds} WHERE counter_key = $1 AND expires_at <= now_ms AND NOT settled) AS stale
FROM ${n.table}, (SELECT ${NOW} AS now_ms) AS clock
WHERE storage_key = $1 AND value IS NOT NULL AND (expires_at IS NULL OR expires_at > now_ms)`
}
