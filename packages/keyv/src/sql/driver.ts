/** What the SQL store asks of a database driver (PostgreSQL through pg, MySQL through mysql2). */

/** Arguments of the apply routine, one array element per op. */
export interface ApplyArgs {
  keys: Buffer[]
  deltas: number[]
  /** The max of an op with delta > 0, the min of one with delta < 0; null: none. */
  bounds: (number | null)[]
  ttls: (number | null)[]
  report: boolean[]
  /** The hold an op makes (its units, held for `holdMs`), or null. */
  holdIds: (Buffer | null)[]
  holdMs: (number | null)[]
  /** The hold an op settles (keeping `keep` of its units), or null. */
  settleIds: (Buffer | null)[]
  keep: (number | null)[]
  /**
   * The loader lock of an op's counter when the op gives units back (a refund, a settle), or
   * null: met missing, the counter has its load revoked (see `CounterOp` in @andromeda/core).
   */
  loadLocks: (Buffer | null)[]
  /** Those loader locks, distinct, in byte order: the call locks them before anything else. */
  loadLockOrder: Buffer[]
  /** Every other key the call touches (ops, record, record to clear), distinct, in byte order. */
  lockOrder: Buffer[]
  idempotencyKey: Buffer | null
  idempotencyTtlMs: number | null
  clearKey: Buffer | null
}

/** The routines that write: one call each, one transaction in the database. */
export type WriteRoutine =
  /** `load`: seed only while `token` holds the counter's loader lock `lock` (null: no condition). */
  | { name: 'seed'; key: Buffer; value: number; ttlMs: number | null; load: { lock: Buffer; token: Buffer } | null }
  | { name: 'set'; key: Buffer; value: number; ttlMs: number | null }
  | { name: 'delete'; key: Buffer }
  | { name: 'acquireLock'; key: Buffer; token: Buffer; ttlMs: number }
  | { name: 'releaseLock'; key: Buffer; token: Buffer }

/** One call's link to the store's deadline. */
export interface CallControl {
  /** Aborted when the store gave up on the call: a connection that arrives later goes back unused. */
  readonly signal: AbortSignal
  /** `performance.now()` by which the call must have settled. */
  readonly dueAt: number
  /** Set by the driver once the statement is handed to a connection (from then on it may run). */
  sent: boolean
}

/**
 * How a failure relates to the data:
 * - `not-sent`: the statement never reached a connection (no connection, pool closed).
 * - `conflict`: the database rolled the call back for a deadlock or a serialization failure;
 *   running it again at once may succeed.
 * - `rolled-back-transient`: the database rolled it back for a passing reason (lock or deadline
 *   timeout, statement timeout, too many connections); nothing was applied.
 * - `rolled-back`: the database refused it for a lasting reason (permissions, a missing table);
 *   nothing was applied, but the same call will fail again.
 * - `unknown`: the connection failed after the statement was sent; it may have been applied.
 */
export type FailureKind = 'not-sent' | 'conflict' | 'rolled-back-transient' | 'rolled-back' | 'unknown'

/** A counter as the database reports it: decimal strings, `ttlMs` null when it never expires. */
export interface RawSnapshot {
  value: string
  ttlMs: string | null
}

export interface SqlDriver {
  readonly dialect: 'postgres' | 'mysql'
  /** Create the table and routines if they are missing (idempotent; safe from many processes). */
  migrate(control: CallControl): Promise<void>
  /** The database clock, epoch ms. */
  now(control: CallControl): Promise<number>
  /** The apply routine's text reply (see postgres/apply.ts). `deadline` is in the database clock. */
  apply(args: ApplyArgs, deadline: number, control: CallControl): Promise<string>
  /** A write routine's boolean reply. */
  write(routine: WriteRoutine, deadline: number, control: CallControl): Promise<boolean>
  /** A live counter (after giving back its expired holds), or undefined. */
  get(key: Buffer, deadline: number, control: CallControl): Promise<RawSnapshot | undefined>
  classify(error: unknown, control: CallControl): FailureKind
  /** End the driver's own pool (never the Keyv adapter's). */
  close(): Promise<void>
}

/** Thrown by a driver when it gives up before sending (the caller's deadline passed first). */
export class NotSentError extends Error {
  override readonly name = 'NotSentError'
}

/** Milliseconds left before `dueAt`, at least 1. */
export const remainingMs = (control: CallControl) => Math.max(Math.ceil(control.dueAt - performance.now()), 1)
