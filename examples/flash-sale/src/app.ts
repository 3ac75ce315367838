import {
  AndromedaError,
  type CounterStore,
  consumeAll,
  createQuota,
  createUsageSync,
  LoadError,
  type Quota,
  StoreError,
  type UsageSync,
} from '@andromeda/core'
import { expressQuota } from '@andromeda/express'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import express, { type NextFunction, type Request, type Response } from 'express'
import { type Database, isUniqueViolation } from './db.js'

/** Voucher codes and user ids: short, and without `:` so `${user}:${voucher}` is unambiguous. */
const ID_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/

export interface FlashSaleOptions {
  /** The system of record: vouchers and claims. */
  db: Database
  /** Where the counters live: memory (one process) or Redis (shared). */
  store: CounterStore
  /** How often the write-behind sync saves voucher usage to the database (ms). Default 1000. */
  syncIntervalMs?: number
  /** Claim and unclaim attempts a user may make per minute; `null` turns the limiter off. Default 60. */
  attemptsPerMinute?: number | null
  /** Told about failures that become a 503 or a 500, or that no client sees (a refund that failed, a sync write). */
  onError?: (error: unknown, where: string) => void
}

/** The service: the Express app, its quotas and the (not yet started) usage sync. */
export interface FlashSale {
  app: express.Express
  /** Units of each voucher: limit from the database, usage loaded from its claim rows. */
  vouchers: Quota
  /** One claim per user per voucher, id `${user}:${voucher}`, limit 1. */
  perUser: Quota
  /** Writes voucher usage back to `vouchers.usage`; `start()` it, and `stop()` it for a final flush. */
  sync: UsageSync
}

/** A claim of a voucher the database does not know. */
class UnknownVoucherError extends Error {
  constructor(readonly code: string) {
    super(`no voucher "${code}"`)
    this.name = 'UnknownVoucherError'
  }
}

const PROBLEM = 'application/problem+json'

/** Lifetime of the idempotency records of claims and refunds: covers the retries of one request. */
const IDEMPOTENCY_TTL_MS = 60_000

/** Waits between the retries of one store call (ms); no new attempt starts after `RETRY_BUDGET_MS`. */
const RETRY_DELAYS_MS = [50, 200, 500]
const RETRY_BUDGET_MS = 2500

/**
 * Run `call`; while it fails with a retryable `StoreError` (surely not applied, or carrying an
 * idempotency key), wait and run it again: a few times, and none started after the budget, so
 * a request stays bounded (each attempt is bounded by the store's `commandTimeoutMs`).
 */
async function retrying<T>(call: () => Promise<T>): Promise<T> {
  const startedAt = performance.now()
  for (let attempt = 0; ; attempt++) {
    try {
      return await call()
    } catch (error) {
      const delay = RETRY_DELAYS_MS[attempt]
      const late = performance.now() - startedAt + (delay ?? 0) > RETRY_BUDGET_MS
      if (delay === undefined || late || !StoreError.isInstance(error) || !error.retryable) throw error
      await sleep(delay)
    }
  }
}

function problem(res: Response, status: number, body: Record<string, unknown>): void {
  res.status(status).type(PROBLEM).json({ type: 'about:blank', status, ...body })
}

/**
 * Build the flash-sale service.
 *
 * - `POST /claim {voucher, user}`: 201 and the claim; 409 `sold-out` or `already-claimed`;
 *   404 for an unknown voucher; 429 when the user makes too many attempts.
 * - `POST /unclaim {voucher, user}`: 200 and the units go back; 404 when there is no such claim.
 * - `GET /vouchers/:code`: the live counter (usage, limit, remaining). `GET /healthz`: 200.
 */
export function createFlashSale(options: FlashSaleOptions): FlashSale {
  const { db, store } = options
  const report = options.onError ?? ((error, where) => console.error(`[flash-sale] ${where}:`, error))

  const voucherLimit = async (code: string) => {
    const limit = await db.voucherLimit(code)
    if (limit === undefined) throw new UnknownVoucherError(code)
    return limit
  }
  const vouchers = createQuota({
    name: 'voucher',
    store,
    limit: voucherLimit,
    limitCacheTtlMs: 1000,
    // Long enough for the retries of one request (see `retrying`), short enough not to pile up.
    idempotencyTtlMs: IDEMPOTENCY_TTL_MS,
    // What to load when a voucher's counter is missing (first use, memory store after a
    // restart, Redis flushed): the number of claim rows, not the `usage` column.
    // `usage` is written by the sync below, up to one interval late; reloading from it after
    // the counter vanished would hand out again every unit claimed since the last sync (an
    // oversell, the hole of the Go original's sync-every-3-s example). The rows are the
    // committed truth. Their only lag is claims consumed but not yet inserted, which is why
    // voucher counters get no TTL: they must not vanish while claims are in flight. A Redis
    // restart makes them vanish anyway; then the database's own guard in `insertClaim`
    // refuses what a counter reloaded too low would let through.
    loadUsage: (code) => db.countClaims(code),
  })

  const perUser = createQuota({
    name: 'per-user',
    store,
    limit: 1,
    loadUsage: (id) => {
      const [user, voucher] = id.split(':') as [string, string]
      return db.countClaims(voucher, user)
    },
    // Unlike vouchers, these counters may expire (they would pile up otherwise): a reload
    // that misses a claim still in flight lets a second claim through the quota, and the
    // claims' primary key refuses its insert, which gives the units back.
    ttlMs: 3_600_000,
    idempotencyTtlMs: IDEMPOTENCY_TTL_MS,
  })

  // The same counters (same names, so the same keys) without `loadUsage`, for giving units
  // back. A refund must only undo a unit the counter holds. When the counter is missing
  // (Redis restarted between the row's delete and this refund), reloading it would count the
  // rows, which already lack the claim, and the refund would then take the unit off a second
  // time: a counter one unit low, an oversell waiting to happen. Without `loadUsage` a refund
  // on a missing counter changes nothing, and the next load counts the rows.
  const voucherRefunds = createQuota({
    name: 'voucher',
    store,
    limit: voucherLimit,
    limitCacheTtlMs: 1000,
    idempotencyTtlMs: IDEMPOTENCY_TTL_MS,
  })
  const perUserRefunds = createQuota({ name: 'per-user', store, limit: 1, idempotencyTtlMs: IDEMPOTENCY_TTL_MS })

  const sync = createUsageSync({
    quota: vouchers,
    ids: () => db.voucherCodes(),
    persist: (code, usage) => db.saveUsage(code, usage),
    intervalMs: options.syncIntervalMs ?? 1000,
    onError: (error, code) => report(error, `sync of voucher ${code ?? '(listing)'}`),
  })

  /**
   * Give the units of a claim back (both, or only the per-user one). Each refund carries an
   * idempotency key and is retried while the store answers with a retryable fault, so a
   * refund whose reply was lost is neither lost nor applied twice. A failure after the retries
   * leaves a counter high (never an oversell) and is reported.
   */
  async function giveBack(voucher: string, user: string, which: 'both' | 'per-user' = 'both'): Promise<void> {
    const key = randomUUID()
    const outcomes = await Promise.allSettled([
      which === 'both' ? retrying(() => voucherRefunds.refund(voucher, 1, { idempotencyKey: key })) : undefined,
      retrying(() => perUserRefunds.refund(`${user}:${voucher}`, 1, { idempotencyKey: key })),
    ])
    for (const outcome of outcomes) if (outcome.status === 'rejected') report(outcome.reason, `refund of ${user}:${voucher}`)
  }

  const app = express()
  app.disable('x-powered-by')
  app.use(express.json({ limit: '2kb' }))

  const validBody = (req: Request) => {
    const { voucher, user } = (req.body ?? {}) as { voucher?: unknown; user?: unknown }
    return typeof voucher === 'string' && ID_PATTERN.test(voucher) && typeof user === 'string' && ID_PATTERN.test(user)
      ? { voucher, user }
      : undefined
  }

  const attemptsPerMinute = options.attemptsPerMinute === undefined ? 60 : options.attemptsPerMinute
  if (attemptsPerMinute !== null) {
    const attempts = createQuota({ name: 'attempts', store, limit: attemptsPerMinute, period: 'minute' })
    // Throttles bots hammering the endpoints; RateLimit headers tell clients where they stand.
    // An attempt counts whatever its answer, so no refund on a 4xx.
    app.use(
      ['/claim', '/unclaim'],
      expressQuota({ quota: attempts, id: (req) => validBody(req)!.user, skip: (req) => !validBody(req), refundWhen: false }),
    )
  }

  app.post('/claim', async (req, res) => {
    const body = validBody(req)
    if (!body) return problem(res, 400, { title: 'Bad Request', detail: 'body must be {"voucher": string, "user": string}' })
    const { voucher, user } = body
    // Both units or neither. The per-user item goes first: when the two keys cannot be applied
    // in one atomic call (Redis, different slots) consumeAll runs them in order, and a repeat
    // claimer is then refused without ever holding a voucher unit someone else could get.
    // The idempotency key makes the call safe to send again: when a reply is lost (a dropped
    // connection, a pause past the store's timeout) the units may have been counted, and a
    // retry with the same key replays that result instead of counting them twice or leaking them.
    const idempotencyKey = randomUUID()
    const outcome = await retrying(() =>
      consumeAll(
        [
          { quota: perUser, id: `${user}:${voucher}` },
          { quota: vouchers, id: voucher },
        ],
        { idempotencyKey },
      ),
    )
    if (!outcome.allowed) {
      const soldOut = outcome.refused?.quota === 'voucher'
      return problem(res, 409, {
        title: soldOut ? 'Sold out' : 'Already claimed',
        reason: soldOut ? 'sold-out' : 'already-claimed',
        'violated-policies': [outcome.refused?.quota],
      })
    }
    // Not `transact`: it guards one quota, and this claim holds two. The same shape by hand:
    // the units are held, the insert runs, and if it fails both units go back.
    let inserted: boolean
    try {
      inserted = await db.insertClaim(voucher, user)
    } catch (error) {
      await giveBack(voucher, user)
      if (isUniqueViolation(error)) {
        return problem(res, 409, { title: 'Already claimed', reason: 'already-claimed', 'violated-policies': ['per-user'] })
      }
      throw error
    }
    if (!inserted) {
      // The database holds `limit` rows already: the voucher counter was lower than the rows
      // (reloaded while a claim was between its counter and its row). Keep the voucher unit,
      // which brings the counter back up toward the rows; give the per-user unit back.
      await giveBack(voucher, user, 'per-user')
      return problem(res, 409, { title: 'Sold out', reason: 'sold-out', 'violated-policies': ['voucher'] })
    }
    const granted = outcome.results[1]!
    res.status(201).json({ voucher, user, usage: granted.usage, remaining: granted.remaining })
  })

  app.post('/unclaim', async (req, res) => {
    const body = validBody(req)
    if (!body) return problem(res, 400, { title: 'Bad Request', detail: 'body must be {"voucher": string, "user": string}' })
    const { voucher, user } = body
    // Make sure the voucher's counter is in the store before the row goes: a counter loaded
    // after the delete would count the remaining rows, and the refund below would take the
    // unclaimed unit off a second time.
    await vouchers.get(voucher)
    if (!(await db.deleteClaim(voucher, user))) {
      return problem(res, 404, { title: 'Not Found', detail: `user "${user}" has no claim on voucher "${voucher}"` })
    }
    await giveBack(voucher, user)
    res.json({ voucher, user, unclaimed: true })
  })

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true })
  })

  app.get('/vouchers/:code', async (req, res) => {
    const state = await vouchers.get(req.params.code)
    res.json({ code: req.params.code, usage: state.usage, limit: state.limit, remaining: state.remaining })
  })

  app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error)
    if (LoadError.isInstance(error) && (error as LoadError).cause instanceof UnknownVoucherError) {
      return problem(res, 404, { title: 'Not Found', detail: ((error as LoadError).cause as Error).message })
    }
    const status = (error as { status?: unknown }).status
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return problem(res, status, { title: 'Bad Request', detail: (error as Error).message })
    }
    report(error, 'request')
    // The quota's own failures (store down or slow, a load or a loader lock that failed, a
    // give-back that failed) are typed: a 503 whose body names the stable code, so a client
    // can tell "try again" from a bug. Only what is not andromeda's stays an untyped 500.
    if (AndromedaError.isInstance(error)) {
      res.set('Retry-After', '1')
      return problem(res, 503, {
        title: 'Service Unavailable',
        detail: StoreError.isInstance(error) ? 'quota store unavailable' : error.message,
        code: error.code,
        ...(StoreError.isInstance(error) ? { retryable: error.retryable } : {}),
      })
    }
    problem(res, 500, { title: 'Internal Server Error' })
  })

  return { app, vouchers, perUser, sync }
}
