import type { SqlNames } from '../names.js'
import { quote } from './names.js'

/**
 * The counters table with its expiry index, and the holds table.
 *
 * counters: `storage_key` (the key's bytes), `value` (a counter), `data` (an idempotency record
 * or a lock's token), `expires_at` (epoch ms; NULL: never).
 * holds: a hold's units are part of its counter's value until it is settled (then a settled mark
 * stays for `hold_ms`, so settling again replays) or expires (then they are given back).
 */
export function mysqlTables(table: string, n: SqlNames): string[] {
  const t = n.table
  return [
    `CREATE TABLE IF NOT EXISTS ${t} (
  storage_key VARBINARY(1024) NOT NULL PRIMARY KEY,
  value BIGINT NULL,
  data BLOB NULL,
  expires_at BIGINT NULL,
  KEY ${quote(`${table}_expires_at`)} (expires_at)
) ENGINE = InnoDB`,
    `CREATE TABLE IF NOT EXISTS ${n.holds} (
  counter_key VARBINARY(1024) NOT NULL,
  hold_id VARBINARY(1024) NOT NULL,
  cost BIGINT NOT NULL,
  hold_ms BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  settled TINYINT NOT NULL DEFAULT 0,
  PRIMARY KEY (counter_key, hold_id)
) ENGINE = InnoDB`,
  ]
}
