import { randomUUID } from 'node:crypto'
import {
  type CounterStore,
  createQuota,
  createUsageSync,
  type Quota,
  reserveAll,
  type UsageSync,
} from '@andromeda/core'
import { expressQuota } from '@andromeda/express'
import express, { type Request } from 'express'
import { type Database, isUniqueViolation } from './db.js'
import { errorHandler, problem, refused, UnknownVoucherError } from './problems.js'

/** Voucher codes and user ids: short, and without `:` so `${user}:${voucher}` is unambiguous. */
const ID_PATTERN = /^[A-Za-z0-9_.-]{1,128}$/

export interface FlashSaleOptions {
  /** The system of record: vouchers and claims. */
  db: Database
  /** Where the counters live: memory (one process) or Redis (shared). */
  store: CounterStore
  /** How often the write-behind sync saves voucher usage to the database (ms). Default 1000. */
  syncIntervalMs?: number
  /** How long a claim holds its units until its row is in (ms); a crashed claim's come back after it. Default 60,000. */
  holdMs?: number
  /** Claim and unclaim attempts a user may make per minute; `null` turns the limiter off. Default 60. */
  attemptsPerMinute?: number | null
  /** Told about failures that become a 503 or a 500, or that no client sees (a settle, a refund, a sync write). */
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

/**
 * Build the flash-sale service.
 *
 * - `POST /claim {voucher, user}`: 201 and the claim; 409 `sold-out` or `already-claimed`;
 *   404 for an unknown voucher; 429 when the user makes too many attempts.
 * - `POST /unclaim {voucher, user}`: 200 and the units go back; 404 when there is no such claim.
 * - `GET /vouchers/:code`: the live counter (usage, limit, remaining). `GET /healthz`: 200.
 */
export function createFlashSale(options: FlashSaleOptions): FlashSale {
  const { db, store, holdMs } = options
  const report = options.onError ?? ((error, where) => console.error(`[flash-sale] ${where}:`, error))
  // Records of idempotency keys only need to outlive the engine's retries of one call.
  const idempotencyTtlMs = 60_000

  const vouchers = createQuota({
    name: 'voucher',
    store,
    limit: async (code) => {
      const limit = await db.voucherLimit(code)
      if (limit === undefined) throw new UnknownVoucherError(code)
      return limit
    },
    limitCacheTtlMs: 1000,
    idempotencyTtlMs,
    holdMs,
    // A missing counter (first use, memory store after a restart, Redis flushed) is loaded from
    // the claim rows, not the `usage` column: the sync below writes that column up to one
    // interval late, and reloading from it would hand out again every unit claimed since (the
    // hole of the Go original's sync-every-3-s example). No TTL, so a counter does not vanish
    // while claims are in flight; when Redis loses it anyway, `insertClaim`'s guard refuses
    // what a low counter lets through.
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
    // These may expire (they would pile up otherwise): a reload that misses a claim in flight
    // lets a second claim through, and the claims' primary key refuses its row.
    ttlMs: 3_600_000,
    idempotencyTtlMs,
    holdMs,
  })

  const sync = createUsageSync({
    quota: vouchers,
    ids: () => db.voucherCodes(),
    persist: (code, usage) => db.saveUsage(code, usage),
    intervalMs: options.syncIntervalMs ?? 1000,
    onError: (error, code) => report(error, `sync of voucher ${code ?? '(listing)'}`),
  })

  const app = express()
  app.disable('x-powered-by')
  app.use(express.json({ limit: '2kb' }))
  const validBody = (req: Request) => {
    const { voucher, user } = (req.body ?? {}) as { voucher?: unknown; user?: unknown }
    const valid =
      typeof voucher === 'string' && ID_PATTERN.test(voucher) && typeof user === 'string' && ID_PATTERN.test(user)
    return valid ? { voucher, user } : undefined
  }

  const attemptsPerMinute = options.attemptsPerMinute === undefined ? 60 : options.attemptsPerMinute
  if (attemptsPerMinute !== null) {
    const attempts = createQuota({ name: 'attempts', store, limit: attemptsPerMinute, period: 'minute' })
    // Throttles bots hammering the endpoints. An attempt counts whatever its answer: no refund on a 4xx.
    const skip = (req: Request) => !validBody(req)
    app.use(
      ['/claim', '/unclaim'],
      expressQuota({ quota: attempts, id: (req) => validBody(req)!.user, skip, refundWhen: false }),
    )
  }
  app.post(['/claim', '/unclaim'], (req, res, next) => {
    if (validBody(req)) return next()
    problem(res, 400, { title: 'Bad Request', detail: 'body must be {"voucher": string, "user": string}' })
  })

  app.post('/claim', async (req, res) => {
    const { voucher, user } = validBody(req)!
    // Both units held, or neither; per-user first, so where the two cannot be held in one atomic
    // call (a Redis Cluster, two slots) a repeat claimer is refused before holding a voucher
    // unit. The key lets the engine resend the call when a reply is lost. Should this process
    // die before the row is in, the holds come back by themselves after `holdMs`.
    const held = await reserveAll(
      [
        { quota: perUser, id: `${user}:${voucher}` },
        { quota: vouchers, id: voucher },
      ],
      {
        idempotencyKey: randomUUID(),
      },
    )
    if (!held.allowed) return refused(res, held.refused!.quota)
    // A settle that fails is only reported: the holds come back by themselves.
    const settle = (step: Promise<unknown>, what: string) =>
      step.catch((error: unknown) => report(error, `${what} of ${user}:${voucher}`))
    let inserted: boolean
    try {
      inserted = await db.insertClaim(voucher, user)
    } catch (error) {
      await settle(held.release(), 'release')
      if (isUniqueViolation(error)) return refused(res, 'per-user')
      throw error
    }
    if (!inserted) {
      // The database holds `limit` rows: the counter was below them (a claim whose process died
      // between its row and its commit). Its guard refused this one; the holds go back.
      await settle(held.release(), 'release')
      return refused(res, 'voucher')
    }
    // The row is the claim. A commit that failed (or a process that died before it) leaves the
    // counters low once the holds lapse: the guard in `insertClaim` refuses what they let through.
    await settle(held.commit(), 'commit')
    const granted = held.results[1]!
    res.status(201).json({ voucher, user, usage: granted.usage, remaining: granted.remaining })
  })

  app.post('/unclaim', async (req, res) => {
    const { voucher, user } = validBody(req)!
    // The units go back while the claim's row is locked, then the row goes, in one transaction:
    // should this process die in between, the row stays and the counters are low (the guard in
    // `insertClaim` keeps the limit), never high. A load meanwhile waits for the row to go (see
    // `countClaims`); a refund on a missing counter changes nothing, so a counter never loses
    // this unit twice, and revokes a load under way, which counts again: one that counted
    // before this row was locked never seeds the unit back. The key, this claim's own, lets the engine resend a refund whose
    // reply was lost, and a retried unclaim replays the refunds that went through.
    const found = await db.deleteClaim(voucher, user, (claimedAt) => {
      const idempotencyKey = `unclaim ${claimedAt}`
      return Promise.all([
        vouchers.refund(voucher, 1, { idempotencyKey }),
        perUser.refund(`${user}:${voucher}`, 1, { idempotencyKey }),
      ])
    })
    if (!found)
      return problem(res, 404, { title: 'Not Found', detail: `user "${user}" has no claim on voucher "${voucher}"` })
    res.json({ voucher, user, unclaimed: true })
  })

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true })
  })
  app.get('/vouchers/:code', async (req, res) => {
    const state = await vouchers.get(req.params.code)
    res.json({ code: req.params.code, usage: state.usage, limit: state.limit, remaining: state.remaining })
  })

  app.use(errorHandler(report))
  return { app, vouchers, perUser, sync }
}
