import {
  type CounterStore,
  consumeAll,
  createQuota,
  type Quota,
  type QuotaHooks,
  type QuotaResult,
} from '@andromeda/core'
import type fc from 'fast-check'
import { expect } from 'vitest'
import { randomName } from '../random.js'
import { sagaOnly, scheduled } from '../store-views.js'

/** One operation of a concurrent batch, on id `x` (0) or `y` (1). */
export interface ConcurrentOp {
  kind: 'consume' | 'refund' | 'consumeAll'
  id: number
  cost: number
}

/** The quotas of a batch: `limit` on a, `otherLimit` on b, a's usage maybe loaded, consumeAll([a, b]) maybe a saga. */
export interface ConcurrentSetup {
  limit: number
  otherLimit: number
  loaded: number | null
  saga: boolean
}

const IDS = ['x', 'y']

/** What a batch has been granted so far, as the callers saw it. */
class Ledger {
  private readonly net = new Map<string, number>()
  /**
   * Units a refund may take, by id. Refunds give back only units already granted (as a caller
   * would): a refund of units that nobody was granted could take those a consumeAll saga holds,
   * and its give-back would then stop at zero, which no ledger could follow. What a refund may
   * take is counted when the refund starts, so two refunds in flight never take the same units.
   */
  readonly refundable = new Map<string, number>()

  add(quota: string, id: string, delta: number): void {
    this.net.set(`${quota}/${id}`, (this.net.get(`${quota}/${id}`) ?? 0) + delta)
  }

  of(quota: string, id: string): number {
    return this.net.get(`${quota}/${id}`) ?? 0
  }

  granted(id: string, cost: number): void {
    this.refundable.set(id, (this.refundable.get(id) ?? 0) + cost)
  }
}

/**
 * Fire `ops` at once through a store whose calls are started in an order chosen by fast-check,
 * then check the ledger: for each counter, usage == loaded + granted - refunded, within
 * [0, limit], and every refusal was justified at the moment it was taken.
 */
export async function runConcurrent(
  store: CounterStore,
  s: fc.Scheduler,
  setup: ConcurrentSetup,
  ops: ConcurrentOp[],
): Promise<void> {
  const loaded = setup.loaded === null ? null : Math.min(setup.loaded, setup.limit)
  const ledger = new Ledger()
  const { a, b } = batchQuotas(store, s, setup, loaded, ledger)
  await s.waitFor(Promise.all(ops.map((op, i) => runOp({ a, b, setup, loaded, ledger }, op, i))))
  for (const id of IDS) {
    const usageA = (await s.waitFor(a.get(id))).usage
    expect(usageA, `usage of ${a.name}/${id}`).toBe((loaded ?? 0) + ledger.of(a.name, id))
    expect(usageA).toBeGreaterThanOrEqual(0)
    expect(usageA).toBeLessThanOrEqual(setup.limit)
    const usageB = (await s.waitFor(b.get(id))).usage
    expect(usageB, `usage of ${b.name}/${id}`).toBe(ledger.of(b.name, id))
    expect(usageB).toBeLessThanOrEqual(setup.otherLimit)
  }
}

/** Quotas a and b on the scheduled store; a saga's give-back refused (concurrent refunds gave back more) stays in the ledger. */
function batchQuotas(
  store: CounterStore,
  s: fc.Scheduler,
  setup: ConcurrentSetup,
  loaded: number | null,
  ledger: Ledger,
): { a: Quota; b: Quota } {
  const view = scheduled(store, s)
  const hooks = (name: () => string): QuotaHooks => ({
    onCompensate: (e) => {
      if (e.result && !e.result.allowed) ledger.add(name(), e.id, e.cost)
    },
  })
  const a: Quota = createQuota({
    name: randomName('ca'),
    store: view,
    limit: setup.limit,
    ...(loaded === null ? {} : { loadUsage: s.scheduleFunction(async () => loaded) }),
    lock: { retryDelayMs: 1, retries: 1000 },
    hooks: hooks(() => a.name),
  })
  // On a view of its own, b makes consumeAll([a, b]) take the saga; on the same view, one apply.
  const b: Quota = createQuota({
    name: randomName('cb'),
    store: setup.saga ? sagaOnly(view) : view,
    limit: setup.otherLimit,
    hooks: hooks(() => b.name),
  })
  return { a, b }
}

interface Batch {
  a: Quota
  b: Quota
  setup: ConcurrentSetup
  loaded: number | null
  ledger: Ledger
}

/** One op of the batch, its answer checked and counted in the ledger. */
async function runOp({ a, b, setup, loaded, ledger }: Batch, op: ConcurrentOp, i: number): Promise<void> {
  const id = IDS[op.id]!
  const label = `op ${i}: ${JSON.stringify(op)}`
  if (op.kind === 'consumeAll') {
    const r = await consumeAll([
      { quota: a, id, cost: op.cost },
      { quota: b, id, cost: op.cost },
    ])
    if (r.allowed) {
      ledger.add(a.name, id, op.cost)
      ledger.add(b.name, id, op.cost)
      ledger.granted(id, op.cost)
    }
    // The refused item was over its limit; the others were merely not granted.
    if (r.allowed || r.refused?.index === 0) checkAnswer(r.results[0]!, setup.limit, op.cost, 'consume', label)
    if (r.allowed || r.refused?.index === 1) checkAnswer(r.results[1]!, setup.otherLimit, op.cost, 'consume', label)
    return
  }
  if (op.kind === 'refund') {
    // Only units granted already (the loaded usage counts as granted).
    if ((ledger.refundable.get(id) ?? 0) + (loaded ?? 0) < op.cost) return
    ledger.granted(id, -op.cost)
  }
  const r = await a[op.kind](id, op.cost)
  if (r.allowed) ledger.add(a.name, id, op.kind === 'consume' ? op.cost : -op.cost)
  else if (op.kind === 'refund') ledger.granted(id, op.cost)
  if (r.allowed && op.kind === 'consume') ledger.granted(id, op.cost)
  checkAnswer(r, setup.limit, op.cost, op.kind, label)
}

/** A grant stays within the limit, and a refusal was justified when it was taken. */
function checkAnswer(r: QuotaResult, limit: number, cost: number, kind: 'consume' | 'refund', label: string): void {
  expect(r.usage, label).toBeGreaterThanOrEqual(0)
  if (r.allowed && kind === 'consume') expect(r.usage, label).toBeLessThanOrEqual(limit)
  if (r.reason === 'limit') expect(r.usage + cost, label).toBeGreaterThan(limit)
  // A refund on a missing counter is refused with floor at usage 0, whatever its cost.
  if (r.reason === 'floor' && r.usage > 0) expect(r.usage, label).toBeLessThan(cost)
}
