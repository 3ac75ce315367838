/**
 * The PostgreSQL table and functions of the SQL path, one function a file. Every contract call
 * that writes is one call of one PL/pgSQL function: one statement, so one transaction, atomic
 * for every session.
 *
 * Conventions shared by every function:
 * - Times are epoch ms of the database clock (`clock_timestamp()`, read after any lock wait);
 *   `expires_at` NULL means no expiry. A row is live when it holds something (`value` or `data`)
 *   and has not expired; anything else reads as missing, and is reclaimed (deleted) when touched.
 * - `p_deadline` is the caller's deadline in the database clock. A call that starts at or after it
 *   changes nothing, and a call that reaches its commit after it is rolled back: a caller told
 *   "timed out" is never applied later. Both raise SQLSTATE `QA001`. Lock waits are bounded by
 *   the store's sessions (`lock_timeout`, set when a connection opens: a per-call `set_config`
 *   costs a fifth of a plain consume).
 * - Rows are locked in one order, by key bytes, after placeholders (rows with no `value` and no
 *   `data`) are made for missing keys, so two calls over the same keys never deadlock and a
 *   missing key can be locked like a present one. Placeholders never outlive the call.
 * - Each call that may create a row (all but a plain consume or refund of a live counter) also
 *   deletes up to two expired rows of other keys, oldest first, skipping locked ones: the table
 *   does not grow with counters that expired and were never touched again.
 */

import { postgresApply } from './apply.js'
import { postgresDelete } from './delete.js'
import { postgresGetFunction } from './get.js'
import { postgresAcquireLock, postgresReleaseLock } from './locks.js'
import { postgresNames } from './names.js'
import { postgresSeed } from './seed.js'
import { postgresSet } from './set.js'
import { postgresTables } from './tables.js'

/**
 * The statements that create the table and functions, in order; each is idempotent, so running
 * them again (another process, a later start) changes nothing.
 */
export function postgresMigration(schema: string, table: string): string[] {
  const n = postgresNames(schema, table)
  return [
    ...postgresTables(schema, table, n),
    postgresApply(n),
    postgresSeed(n),
    postgresSet(n),
    postgresDelete(n),
    postgresGetFunction(n),
    postgresAcquireLock(n),
    postgresReleaseLock(n),
  ]
}
