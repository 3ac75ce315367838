import { type CallControl, type FailureKind, NotSentError } from './driver.js'
import { DEADLINE_SQLSTATE } from './postgres/parts.js'

/** SQLSTATEs after which the database has rolled the call back for a passing reason. */
const TRANSIENT = new Set([
  DEADLINE_SQLSTATE,
  '55P03', // lock_not_available: our lock_timeout
  '57014', // query_canceled: statement_timeout or a cancel request
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '53400', // configuration_limit_exceeded
  '53200', // out_of_memory
])
const CONFLICT = new Set(['40001', '40P01']) // serialization_failure, deadlock_detected

interface DatabaseErrorLike {
  code?: unknown
  severity?: unknown
}

/** An error PostgreSQL sent (pg's DatabaseError carries the SQLSTATE in `code` and a `severity`). */
function sqlState(error: unknown): string | undefined {
  const e = error as DatabaseErrorLike | null
  return typeof e?.code === 'string' && typeof e.severity === 'string' ? e.code : undefined
}

/** A statement the server refused leaves the connection usable; anything else does not. */
export function breaksConnection(error: unknown): boolean {
  return sqlState(error) === undefined || (error as DatabaseErrorLike).severity === 'FATAL'
}

/** How a failed call relates to the data (see `FailureKind`). */
export function classifyPostgresError(error: unknown, control: CallControl): FailureKind {
  if (error instanceof NotSentError) return 'not-sent'
  const state = sqlState(error)
  if (state === undefined) return control.sent ? 'unknown' : 'not-sent'
  if (CONFLICT.has(state)) return 'conflict'
  // The session was ended (pg_terminate_backend, a shutdown) while the statement ran: it
  // was rolled back unless it had just committed. Not knowable from here.
  if (state.startsWith('57P0') && state !== '57P03') return control.sent ? 'unknown' : 'not-sent'
  if (TRANSIENT.has(state) || state.startsWith('08')) return 'rolled-back-transient'
  return 'rolled-back'
}
