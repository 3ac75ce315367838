import type { KeyvCounterStore } from '../counter-store.js'
import type { ApplyOptions, ApplyResult, CounterOp, CounterSnapshot } from '@andromeda/core'
import { AndromedaError, InvalidArgumentError, StoreError } from '@andromeda/core'
import { type ApplyArgs, type CallControl, type FailureKind, NotSentError, type SqlDriver, type WriteRoutine } from './driver.js'
import { createStorageKeys } from './keys.js'
import { parseApplyReply, parseSnapshot } from './replies.js'

/** Settings of the SQL path, resolved by `createKeyvStore`. */
export interface SqlStoreSettings {
  driver: SqlDriver
  /** Prepended to every key: the Keyv namespace and `:`, as Keyv prefixes its own keys. */
  prefix: string
  commandTimeoutMs: number
  /** Create the table and routines on first use when they are missing. */
  createTable: boolean
}

const DEFAULT_IDEMPOTENCY_TTL_MS = 86_400_000
/** How long one reading of the database clock is trusted before it is read again. */
const CLOCK_MAX_AGE_MS = 60_000
/** Attempts of a call the database rolled back for a deadlock or a serialization failure. */
const MAX_ATTEMPTS = 4
/**
 * The database refuses a call this long before the store gives up on it, which leaves the
 * commit (and the reply) that long to arrive: a call the store reports as timed out has been
 * rolled back, or refused to start, in the database.
 */
export const commitAllowanceMs = (timeoutMs: number) => Math.min(100, Math.floor(timeoutMs / 5))

function checkInteger(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(name, `must be an integer in [${min}, 2^53 - 1], got ${String(value)}`)
  }
  return value
}

const optionalInteger = (name: string, value: unknown, min: number): number | null => (value === undefined ? null : checkInteger(name, value, min))

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * A `CounterStore` on PostgreSQL or MySQL / MariaDB: every call that writes is one call of one
 * routine in the database (one statement, or one transaction on one connection), so it is
 * atomic for every process: `capabilities: { shared: true, atomic: 'global' }`.
 */
export function createSqlStore(settings: SqlStoreSettings): KeyvCounterStore {
  const { driver, commandTimeoutMs } = settings
  const storageKey = createStorageKeys(settings.prefix)
  const allowanceMs = commitAllowanceMs(commandTimeoutMs)
  /** Lower bound of (database clock - `performance.now()`), ms. */
  let clock: { offsetMs: number; refreshAfter: number } | undefined
  let preparing: Promise<void> | undefined
  let migrated = !settings.createTable
  let closed: Promise<void> | undefined
  const inFlight = new Set<Promise<unknown>>()

  /** A control of the store's own, bounded by `commandTimeoutMs`, for work no single call owns. */
  function ownControl(): { control: CallControl; done: () => void } {
    const abort = new AbortController()
    const timer = setTimeout(() => abort.abort(), commandTimeoutMs)
    return { control: { signal: abort.signal, dueAt: performance.now() + commandTimeoutMs, sent: false }, done: () => clearTimeout(timer) }
  }

  /**
   * Migrate (once) and read the database clock. Shared by the calls that arrive meanwhile, and
   * bounded on its own, so one caller giving up does not fail the others.
   */
  function prepare(): Promise<void> {
    preparing ??= (async () => {
      const { control, done } = ownControl()
      try {
        if (!migrated) {
          await driver.migrate(control)
          migrated = true
        }
        await calibrate(control)
      } finally {
        done()
        preparing = undefined
      }
    })()
    return preparing
  }

  async function calibrate(control: CallControl): Promise<void> {
    const databaseNow = await driver.now(control)
    // The database read its clock before this instant: the offset is at least this.
    const offsetMs = databaseNow - performance.now()
    clock = { offsetMs, refreshAfter: performance.now() + CLOCK_MAX_AGE_MS }
  }

  /** Refresh an old clock reading in the background; calls keep the current one meanwhile. */
  function refreshClock(): void {
    if (preparing || closed) return
    const { control, done } = ownControl()
    preparing = calibrate(control)
      .catch(() => {})
      .finally(() => {
        done()
        preparing = undefined
      })
  }

  function toStoreError(error: unknown, kind: FailureKind, what: string, idempotent: boolean, attempts: number): unknown {
    if (AndromedaError.isInstance(error)) return error
    const detail = errorMessage(error)
    switch (kind) {
      case 'not-sent':
        return new StoreError(`${what} was not sent: ${detail}`, { retryable: true, cause: error })
      case 'conflict':
        return new StoreError(`${what} was rolled back on each of ${attempts} attempts (deadlock or serialization failure): ${detail}`, {
          retryable: true,
          cause: error,
        })
      case 'rolled-back-transient':
        return new StoreError(`${what} was rolled back: ${detail}`, { retryable: true, cause: error })
      case 'rolled-back':
        return new StoreError(`${what} failed: ${detail}`, { retryable: idempotent, cause: error })
      default:
        return new StoreError(`${what} failed after it was sent${idempotent ? '' : '; it may have been applied'}: ${detail}`, {
          retryable: idempotent,
          cause: error,
        })
    }
  }

  /**
   * One bounded call: settles within `commandTimeoutMs`, whatever the database does. The
   * database gets a deadline `allowanceMs` earlier in its own clock, past which it refuses to
   * start, stops waiting for locks and rolls back instead of committing.
   */
  function run<T>(what: string, idempotent: boolean, send: (deadline: number, control: CallControl) => Promise<T>): Promise<T> {
    if (closed) return Promise.reject(new StoreError('keyv SQL store is closed', { retryable: false }))
    const abort = new AbortController()
    const control: CallControl = { signal: abort.signal, dueAt: performance.now() + commandTimeoutMs, sent: false }
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abort.abort()
        const detail = `no answer within ${commandTimeoutMs} ms`
        reject(
          control.sent
            ? new StoreError(`${what}: ${detail}; the database rolls it back from its deadline on${idempotent ? '' : ', but it may have committed just before'}`, {
                retryable: idempotent,
              })
            : new StoreError(`${what} was not sent: ${detail}`, { retryable: true }),
        )
      }, commandTimeoutMs)
    })
    const attempt = async (): Promise<T> => {
      if (!clock || !migrated) {
        try {
          await prepare()
        } catch (error) {
          throw new StoreError(`${what} was not sent: the database could not be prepared: ${errorMessage(error)}`, { retryable: true, cause: error })
        }
      } else if (performance.now() > clock.refreshAfter) refreshClock()
      for (let attempts = 1; ; attempts++) {
        if (abort.signal.aborted) throw new NotSentError('the call was given up')
        control.sent = false
        const deadline = Math.floor(control.dueAt + clock!.offsetMs) - allowanceMs
        try {
          return await send(deadline, control)
        } catch (error) {
          const kind = driver.classify(error, control)
          if (kind === 'conflict' && attempts < MAX_ATTEMPTS && performance.now() < control.dueAt - allowanceMs) continue
          throw toStoreError(error, kind, what, idempotent, attempts)
        }
      }
    }
    const settled = Promise.race([attempt(), timedOut]).finally(() => clearTimeout(timer))
    inFlight.add(settled)
    void settled.then(
      () => inFlight.delete(settled),
      () => inFlight.delete(settled),
    )
    return settled
  }

  function applyArgs(ops: readonly CounterOp[], options: ApplyOptions): { args: ApplyArgs; writes: boolean } {
    if (!Array.isArray(ops)) throw new InvalidArgumentError('ops', 'must be an array')
    const args: ApplyArgs = {
      keys: [],
      deltas: [],
      bounds: [],
      ttls: [],
      report: [],
      holdIds: [],
      holdMs: [],
      settleIds: [],
      keep: [],
      lockOrder: [],
      idempotencyKey: null,
      idempotencyTtlMs: null,
      clearKey: null,
    }
    let writes = false
    for (const [i, op] of ops.entries()) {
      args.keys.push(storageKey(op.key, `ops[${i}].key`))
      if (op.ifMissing !== 'create' && op.ifMissing !== 'report') throw new InvalidArgumentError(`ops[${i}].ifMissing`, `must be 'create' or 'report'`)
      const delta = checkInteger(`ops[${i}].delta`, op.delta, -Number.MAX_SAFE_INTEGER)
      const max = optionalInteger(`ops[${i}].max`, op.max, 0)
      const min = optionalInteger(`ops[${i}].min`, op.min, -Number.MAX_SAFE_INTEGER)
      if (delta !== 0) writes = true
      args.deltas.push(delta)
      args.bounds.push(delta > 0 ? max : delta < 0 ? min : null)
      args.ttls.push(optionalInteger(`ops[${i}].ttlMs`, op.ttlMs, 1))
      args.report.push(op.ifMissing === 'report')
      const { hold, settle } = op
      if (hold !== undefined && settle !== undefined) throw new InvalidArgumentError(`ops[${i}]`, 'cannot both hold and settle')
      if (hold !== undefined && delta < 0) throw new InvalidArgumentError(`ops[${i}].delta`, 'must be >= 0 to hold units')
      // A hold of 0 units (a reserve of cost 0) holds nothing: a read, as on the other stores.
      if (hold !== undefined && delta > 0) {
        args.holdIds.push(holdId(`ops[${i}].hold.id`, hold.id))
        args.holdMs.push(checkInteger(`ops[${i}].hold.holdMs`, hold.holdMs, 1))
        writes = true
      } else {
        args.holdIds.push(null)
        args.holdMs.push(null)
      }
      if (settle !== undefined) {
        if (delta !== 0) throw new InvalidArgumentError(`ops[${i}].delta`, 'must be 0 to settle a hold')
        args.settleIds.push(holdId(`ops[${i}].settle.id`, settle.id))
        args.keep.push(checkInteger(`ops[${i}].settle.keep`, settle.keep, 0))
      } else {
        args.settleIds.push(null)
        args.keep.push(null)
      }
    }
    if (options.idempotencyKey !== undefined) {
      args.idempotencyKey = storageKey(options.idempotencyKey, 'idempotencyKey')
      args.idempotencyTtlMs = checkInteger('idempotencyTtlMs', options.idempotencyTtlMs ?? DEFAULT_IDEMPOTENCY_TTL_MS, 1)
    }
    if (options.clearIdempotencyKey !== undefined) args.clearKey = storageKey(options.clearIdempotencyKey, 'clearIdempotencyKey')
    const all = [...args.keys, ...(args.idempotencyKey ? [args.idempotencyKey] : []), ...(args.clearKey ? [args.clearKey] : [])]
    // One lock order for every caller: byte order, as the database compares the keys.
    const distinct = new Map(all.map((key) => [key.toString('hex'), key]))
    args.lockOrder = [...distinct.values()].sort(Buffer.compare)
    return { args, writes }
  }

  function write<T>(routine: WriteRoutine, what: string, parse: (done: boolean) => T): Promise<T> {
    // Each write routine gives the same result when it runs twice: safe to retry.
    return run(what, true, async (deadline, control) => parse(await driver.write(routine, deadline, control)))
  }

  const attempt = <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return fn()
    } catch (error) {
      return Promise.reject(error)
    }
  }

  return {
    capabilities: { shared: true, atomic: 'global', canApplyTogether: () => true },

    apply(ops, options = {}) {
      return attempt(() => {
        const { args, writes } = applyArgs(ops, options)
        if (ops.length === 0) return Promise.resolve<ApplyResult>({ ok: true, values: [], ttlMs: [] })
        options.signal?.throwIfAborted()
        // Sending it again is harmless when it changes nothing, or when a record would replay it.
        const idempotent = args.idempotencyKey !== null || !writes
        return run(`${driver.dialect} apply`, idempotent, async (deadline, control) =>
          parseApplyReply(await driver.apply(args, deadline, control), ops.length),
        )
      })
    },

    seed(key, value, ttlMs) {
      return attempt(() => {
        const routine: WriteRoutine = {
          name: 'seed',
          key: storageKey(key, 'key'),
          value: checkInteger('value', value, 0),
          ttlMs: optionalInteger('ttlMs', ttlMs, 1),
        }
        return write(routine, `${driver.dialect} seed`, (done) => done)
      })
    },

    get(key): Promise<CounterSnapshot | undefined> {
      return attempt(() => {
        const bytes = storageKey(key, 'key')
        return run(`${driver.dialect} get`, true, async (deadline, control) => parseSnapshot(await driver.get(bytes, deadline, control)))
      })
    },

    set(key, value, ttlMs) {
      return attempt(() => {
        const routine: WriteRoutine = {
          name: 'set',
          key: storageKey(key, 'key'),
          value: checkInteger('value', value, 0),
          ttlMs: optionalInteger('ttlMs', ttlMs, 1),
        }
        return write(routine, `${driver.dialect} set`, () => undefined)
      })
    },

    delete(key) {
      return attempt(() => write({ name: 'delete', key: storageKey(key, 'key') }, `${driver.dialect} delete`, () => undefined))
    },

    acquireLock(key, token, ttlMs) {
      return attempt(() => {
        const routine: WriteRoutine = {
          name: 'acquireLock',
          key: storageKey(key, 'key'),
          token: tokenBytes(token),
          ttlMs: checkInteger('ttlMs', ttlMs, 1),
        }
        return write(routine, `${driver.dialect} acquireLock`, (done) => done)
      })
    },

    releaseLock(key, token) {
      return attempt(() => {
        const routine: WriteRoutine = { name: 'releaseLock', key: storageKey(key, 'key'), token: tokenBytes(token) }
        return write(routine, `${driver.dialect} releaseLock`, (done) => done)
      })
    },

    /** Wait for calls in flight (each bounded by `commandTimeoutMs`), then end the store's own pool. */
    close() {
      closed ??= (async () => {
        await Promise.allSettled([...inFlight])
        await preparing?.catch(() => {})
        await driver.close()
      })()
      return closed
    },
  }
}

/** Hold ids are part of a key of the holds table: well-formed text of at most 255 characters. */
function holdId(argument: string, id: unknown): Buffer {
  if (typeof id !== 'string' || id.length === 0 || id.length > 255) throw new InvalidArgumentError(argument, 'must be a string of 1 to 255 characters')
  if (!id.isWellFormed()) throw new InvalidArgumentError(argument, 'must be well-formed unicode (no lone surrogates)')
  return Buffer.from(id, 'utf8')
}

function tokenBytes(token: unknown): Buffer {
  if (typeof token !== 'string' || token.length === 0) throw new InvalidArgumentError('token', 'must be a non-empty string')
  if (!token.isWellFormed()) throw new InvalidArgumentError('token', 'must be well-formed unicode (no lone surrogates)')
  return Buffer.from(token, 'utf8')
}
