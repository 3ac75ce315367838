import { consumeAll, createQuota } from '@andromeda/core'
import { createMemoryStore } from '@andromeda/memory'
import { downStore } from '@andromeda/test-utils'
import { type DataPoint, type Histogram, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import { describe, expect, it } from 'vitest'
import { withMetrics } from '../src/index.js'

/** A reader that exports nothing by itself: the test collects when it wants the figures. */
class TestReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

/** Every data point of every instrument, as `{ name, attributes, value }`. */
async function collect(reader: TestReader) {
  const { resourceMetrics, errors } = await reader.collect()
  expect(errors).toEqual([])
  return resourceMetrics.scopeMetrics.flatMap((scope) =>
    scope.metrics.flatMap((metric) =>
      (metric.dataPoints as DataPoint<number | Histogram>[]).map((point) => ({
        name: metric.descriptor.name,
        unit: metric.descriptor.unit,
        attributes: point.attributes,
        value: point.value,
      })),
    ),
  )
}

/** `name{attr=value,...}` -> sum (counters) or count (histograms), for exact comparison. */
function figures(points: Awaited<ReturnType<typeof collect>>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const point of points) {
    const labels = Object.entries(point.attributes)
      .map(([key, value]) => `${key}=${String(value)}`)
      .sort()
      .join(',')
    out[`${point.name}{${labels}}`] = typeof point.value === 'number' ? point.value : point.value.count
  }
  return out
}

function setup() {
  const reader = new TestReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  return { reader, meterProvider }
}

describe('withMetrics', () => {
  it('counts a known sequence of calls exactly, labelled by quota name and never by id', async () => {
    const { reader, meterProvider } = setup()
    const metrics = { meterProvider }
    const store = createMemoryStore()
    const userConsumes: string[] = []
    const api = createQuota(
      withMetrics(
        { name: 'api', store, limit: 2, hooks: { onConsume: (event) => void userConsumes.push(event.id) } },
        metrics,
      ),
    )
    const vouchers = createQuota(withMetrics({ name: 'voucher', store, limit: 10, loadUsage: () => 4 }, metrics))
    const down = createQuota(withMetrics({ name: 'down', store: downStore(), limit: 5 }, metrics))
    const denied = createQuota(
      withMetrics({ name: 'denied', store: downStore(), limit: 5, onStoreError: 'deny' }, metrics),
    )
    const unlimited = createQuota(withMetrics({ name: 'free', store, limit: () => null }, metrics))

    await api.consume('alice') // granted
    await api.consume('alice') // granted
    expect((await api.consume('alice')).reason).toBe('limit')
    await api.consume('bob', 1, { idempotencyKey: 'k' }) // granted
    expect((await api.consume('bob', 1, { idempotencyKey: 'k' })).status).toBe('replayed')
    await api.refund('alice') // refunded
    expect((await api.refund('carol')).reason).toBe('floor') // no counter: refused
    await expect(
      api.transact('alice', 1, () => {
        throw new Error('work failed')
      }),
    ).rejects.toThrow('work failed') // granted, then given back
    expect(await vouchers.consume('SUMMER')).toMatchObject({ allowed: true, usage: 5 }) // loaded 4, granted
    await expect(down.consume('x')).rejects.toMatchObject({ code: 'ERR_STORE' })
    expect((await denied.consume('y')).reason).toBe('store')
    expect((await unlimited.consume('z')).status).toBe('unlimited')

    const points = await collect(reader)
    expect(figures(points)).toEqual({
      'andromeda.quota.granted{andromeda.quota.grant=counted,andromeda.quota.name=api}': 4,
      'andromeda.quota.granted{andromeda.quota.grant=replayed,andromeda.quota.name=api}': 1,
      'andromeda.quota.granted{andromeda.quota.grant=counted,andromeda.quota.name=voucher}': 1,
      'andromeda.quota.granted{andromeda.quota.grant=unlimited,andromeda.quota.name=free}': 1,
      'andromeda.quota.refused{andromeda.quota.name=api,andromeda.quota.reason=limit}': 1,
      'andromeda.quota.refused{andromeda.quota.name=api,andromeda.quota.reason=floor}': 1,
      'andromeda.quota.refused{andromeda.quota.name=denied,andromeda.quota.reason=store}': 1,
      'andromeda.quota.refunded{andromeda.quota.grant=counted,andromeda.quota.name=api}': 1,
      'andromeda.quota.errors{andromeda.quota.name=down,andromeda.quota.operation=consume,error.type=ERR_STORE}': 1,
      'andromeda.quota.errors{andromeda.quota.name=denied,andromeda.quota.operation=consume,error.type=ERR_STORE}': 1,
      'andromeda.quota.loads{andromeda.quota.name=voucher}': 1,
      'andromeda.quota.compensations{andromeda.compensation.outcome=given_back,andromeda.quota.name=api}': 1,
      // api: 3 + 2 consumes, 2 refunds, the transact's consume and its give-back.
      'andromeda.store.duration{andromeda.quota.name=api,andromeda.store.operation=apply}': 9,
      // voucher: missing, missing again under the loader, then granted; the load in between.
      'andromeda.store.duration{andromeda.quota.name=voucher,andromeda.store.operation=apply}': 3,
      'andromeda.store.duration{andromeda.quota.name=voucher,andromeda.store.operation=acquire_lock}': 1,
      'andromeda.store.duration{andromeda.quota.name=voucher,andromeda.store.operation=get}': 1,
      'andromeda.store.duration{andromeda.quota.name=voucher,andromeda.store.operation=seed}': 1,
      'andromeda.store.duration{andromeda.quota.name=voucher,andromeda.store.operation=release_lock}': 1,
      'andromeda.store.duration{andromeda.quota.name=down,andromeda.store.operation=apply,error.type=ERR_STORE}': 1,
      'andromeda.store.duration{andromeda.quota.name=denied,andromeda.store.operation=apply,error.type=ERR_STORE}': 1,
    })
    expect(new Set(points.map((p) => `${p.name} ${p.unit}`))).toEqual(
      new Set([
        'andromeda.quota.granted {call}',
        'andromeda.quota.refused {call}',
        'andromeda.quota.refunded {call}',
        'andromeda.quota.errors {call}',
        'andromeda.quota.loads {load}',
        'andromeda.quota.compensations {compensation}',
        'andromeda.store.duration s',
      ]),
    )
    // Durations are real: positive, and far below a second on a memory store.
    for (const point of points.filter((p) => p.name === 'andromeda.store.duration')) {
      const { sum, min } = point.value as Histogram
      expect(sum).toBeGreaterThan(0)
      expect(min).toBeGreaterThanOrEqual(0)
    }
    // Never an id in a label.
    const labelValues = points.flatMap((p) => Object.values(p.attributes).map(String))
    for (const id of ['alice', 'bob', 'carol', 'SUMMER', 'x', 'y', 'z', 'k']) expect(labelValues).not.toContain(id)
    // The user's own hook still ran, after the recording one.
    expect(userConsumes).toEqual(['alice', 'alice', 'bob', 'bob', 'alice'])
  })

  it('gives quotas that share a store one timed store, so consumeAll across them stays one atomic call', async () => {
    const { reader, meterProvider } = setup()
    const store = createMemoryStore()
    const a = createQuota(withMetrics({ name: 'a', store, limit: 5 }, { meterProvider }))
    const b = createQuota(withMetrics({ name: 'b', store, limit: 5 }, { meterProvider }))
    expect(a.store).toBe(b.store)
    expect(
      await consumeAll([
        { quota: a, id: 'u' },
        { quota: b, id: 'u' },
      ]),
    ).toMatchObject({ allowed: true })
    // One store call, labelled by the quota of its first key.
    expect(figures(await collect(reader))).toMatchObject({
      'andromeda.store.duration{andromeda.quota.name=a,andromeda.store.operation=apply}': 1,
    })
    expect(
      Object.keys(figures(await collect(reader))).filter((k) => k.startsWith('andromeda.store.duration')),
    ).toHaveLength(1)
  })

  it('records nothing, and changes nothing, without an SDK (the global no-op MeterProvider)', async () => {
    const quota = createQuota(withMetrics({ name: 'api', store: createMemoryStore(), limit: 1 }))
    expect(await quota.consume('u')).toMatchObject({ allowed: true, usage: 1 })
    expect(await quota.consume('u')).toMatchObject({ allowed: false, reason: 'limit' })
  })

  it('leaves a bad store for createQuota to refuse with its own error', () => {
    expect(() => createQuota(withMetrics({ name: 'api', store: undefined as never, limit: 1 }))).toThrow(/store/)
  })
})

describe('metrics options', () => {
  it('refuse an unknown key, naming it and the nearest option', () => {
    const options = { name: 'api', store: createMemoryStore(), limit: 5 }
    expect(() => withMetrics(options, { meterProvidr: undefined } as never)).toThrow(
      /metrics\.meterProvidr.*did you mean 'meterProvider'/,
    )
  })
})
