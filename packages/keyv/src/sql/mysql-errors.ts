import { type CallControl, type FailureKind, NotSentError } from './driver.js'
import { DEADLINE_MESSAGE } from './mysql/parts.js'

const ER_LOCK_WAIT_TIMEOUT = 1205
const ER_LOCK_DEADLOCK = 1213
const ER_CON_COUNT_ERROR = 1040
/** The statement was stopped by a time limit: MariaDB's max_statement_time, MySQL's max_execution_time. */
const STATEMENT_TIME_LIMIT = new Set([1969, 3024])
/** The session was killed or the server went away while the statement ran. */
const SESSION_ENDED = new Set([1053, 1317, 1927, 2006, 2013])

export interface MysqlErrorLike {
  errno?: unknown
  sqlState?: unknown
  sqlMessage?: unknown
  fatal?: unknown
}

/** How a failed call relates to the data (see `FailureKind`). */
export function classifyMysqlError(error: unknown, control: CallControl): FailureKind {
  if (error instanceof NotSentError) return 'not-sent'
  const e = error as MysqlErrorLike | null
  const errno = typeof e?.errno === 'number' ? e.errno : undefined
  if (errno !== undefined && SESSION_ENDED.has(errno)) return control.sent ? 'unknown' : 'not-sent'
  if (e?.fatal === true || typeof e?.sqlState !== 'string') return control.sent ? 'unknown' : 'not-sent'
  // The server answered with an error: every procedure rolls back before it re-raises.
  if (errno === ER_LOCK_DEADLOCK) return 'conflict'
  if (
    errno === ER_LOCK_WAIT_TIMEOUT ||
    errno === ER_CON_COUNT_ERROR ||
    (errno !== undefined && STATEMENT_TIME_LIMIT.has(errno))
  ) {
    return 'rolled-back-transient'
  }
  if (e.sqlState === '45000' && String(e.sqlMessage).startsWith(DEADLINE_MESSAGE)) return 'rolled-back-transient'
  return 'rolled-back'
}
