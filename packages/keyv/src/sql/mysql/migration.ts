/**
 * The MySQL / MariaDB table and procedures of the SQL path, one procedure a file. Every contract
 * call that writes is one `CALL` of one procedure, which runs one transaction on its connection:
 * atomic for every session. Written in the syntax MariaDB 10.6+ and MySQL 8.0.29+ share.
 *
 * Conventions shared by every procedure (see postgres/migration.ts for the same rules there):
 * - Times are epoch ms of the database clock, read as UTC (independent of the session's
 *   `time_zone`); `expires_at` NULL means no expiry. A row is live when it holds something
 *   (`value` or `data`) and has not expired; anything else reads as missing.
 * - `p_deadline` is the caller's deadline in the database clock: a call that starts at or after
 *   it changes nothing, and a call that reaches its commit after it is rolled back. Both raise
 *   SQLSTATE 45000 with a message starting `andromeda: deadline passed`. Lock waits are bounded
 *   by the store's sessions (`innodb_lock_wait_timeout`, whole seconds, set when a connection
 *   opens).
 * - Keys are locked in one order, by key bytes: a present row with `SELECT ... FOR UPDATE`, a
 *   missing one that the call may create with `INSERT ... ON DUPLICATE KEY UPDATE` (a
 *   placeholder row, which also locks a row another session created meanwhile). A missing key
 *   the call only reads or reports gets no placeholder: many sessions inserting one row and
 *   rolling it back is InnoDB's classic deadlock. A call that writes nothing rolls back.
 * - Any error rolls the transaction back before it leaves the procedure, so a connection never
 *   goes back to the pool inside a transaction.
 * - Lists arrive as comma-separated text (keys as hex, integers in decimal, '' for none), built
 *   by the store from checked integers: the procedures parse them with SUBSTRING_INDEX.
 * - Each call that may create a row (all but a plain consume or refund of a live counter) also
 *   deletes up to two expired rows of other keys, oldest first, skipping locked ones.
 */

import { mysqlApply } from './apply.js'
import { mysqlDelete } from './delete.js'
import { mysqlGetProcedure } from './get.js'
import { mysqlAcquireLock, mysqlReleaseLock } from './locks.js'
import { mysqlNames } from './names.js'
import { mysqlSeed } from './seed.js'
import { mysqlSet } from './set.js'
import { mysqlTables } from './tables.js'

/**
 * The statements that create the table and procedures, in order; each is idempotent (`IF NOT
 * EXISTS`), so running them again changes nothing. The release procedure comes last: the driver
 * takes its presence to mean every statement before it has run.
 */
export function mysqlMigration(table: string): string[] {
  const n = mysqlNames(table)
  return [
    ...mysqlTables(table, n),
    mysqlApply(n),
    mysqlSeed(n),
    mysqlSet(n),
    mysqlDelete(n),
    mysqlGetProcedure(n),
    mysqlAcquireLock(n),
    mysqlReleaseLock(n),
  ]
}
