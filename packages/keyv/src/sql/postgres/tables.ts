import type { SqlNames } from '../names.js'
import { quote } from './names.js'

/**
 * The schema, the counters table and its expiry index, and the holds table.
 *
 * counters: `storage_key` (the key's bytes), `value` (a counter), `data` (an idempotency record
 * or a lock's token), `expires_at` (epoch ms; NULL: never).
 * holds: a hold's units are part of its counter's value until it is settled (then a settled mark
 * stays for `hold_ms`, so settling again replays) or expires (then they are given back).
 */
export function postgresTables(schema: string, table: string, n: SqlNames): string[] {
  return [
    `CREATE SCHEMA IF NOT EXISTS ${quote(schema)}`,
    `CREATE TABLE IF NOT EXISTS ${n.table} (
  storage_key bytea PRIMARY KEY,
  value bigint,
  data bytea,
  expires_at bigint
)`,
    `CREATE INDEX IF NOT EXISTS ${quote(`${table}_expires_at`)} ON ${n.table} (expires_at) WHERE expires_at IS NOT NULL`,
    `CREATE TABLE IF NOT EXISTS ${n.holds} (
  counter_key bytea NOT NULL,
  hold_id bytea NOT NULL,
  cost bigint NOT NULL,
  hold_ms bigint NOT NULL,
  expires_at bigint NOT NULL,
  settled boolean NOT NULL DEFAULT false,
  PRIMARY KEY (counter_key, hold_id)
)`,
  ]
}
