import { consumeAll, counterKey, createQuota, StoreError } from '@andromeda/core'
import { afterAll, describe, expect, it } from 'vitest'
import { createKeyvStore } from '../src/index.js'
import { createStorageKeys } from '../src/sql/keys.js'
import { requireService } from './helpers.js'
import { type Admin, answers, connectAdmin, type Dialect, SERVICE, sqlFixture } from './sql-fixture.js'

const available: Record<Dialect, boolean> = {
  postgres: requireService(await answers('postgres'), SERVICE.postgres),
  mysql: requireService(await answers('mysql'), SERVICE.mysql),
}

const TIMEOUT_MS = 500
/** What "within a bound" means here: the timeout plus scheduling slack. */
const BOUND_MS = TIMEOUT_MS + 700
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const storageKey = createStorageKeys('andromeda:')

/** Until another session of this database waits for a lock (pg_locks is live, not a snapshot); bounded. */
async function waitForLockWait(admin: Admin, timeoutMs = 10_000): Promise<void> {
  const until = performance.now() + timeoutMs
  while (performance.now() < until) {
    const rows = await admin.query(
      'SELECT count(*)::int AS waiting FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()',
    )
    if (Number(rows[0]?.waiting) > 0) return
    await sleep(20)
  }
  throw new Error(`no session waited for a lock within ${timeoutMs} ms`)
}

async function timed(fn: () => Promise<unknown>): Promise<{ value?: unknown; error?: unknown; ms: number }> {
  const started = performance.now()
  try {
    return { value: await fn(), ms: performance.now() - started }
  } catch (error) {
    return { error, ms: performance.now() - started }
  }
}

/** Hold row locks on counters from another session, the way a long transaction would. */
async function lockCounters(dialect: Dialect, table: string, keys: string[]): Promise<{ release(): Promise<void> }> {
  const admin = await connectAdmin(dialect)
  const qualified = dialect === 'postgres' ? `public."${table}"` : `\`${table}\``
  const placeholder = dialect === 'postgres' ? '$1' : '?'
  await admin.query(dialect === 'postgres' ? 'BEGIN' : 'START TRANSACTION')
  for (const key of keys)
    await admin.query(`SELECT 1 FROM ${qualified} WHERE storage_key = ${placeholder} FOR UPDATE`, [
      storageKey(key, 'key'),
    ])
  return {
    async release() {
      await admin.query('COMMIT')
      await admin.close()
    },
  }
}

/** End every session of the store's own pool (found by its table in the statement text). */
async function killStoreSessions(admin: Admin, dialect: Dialect, table: string): Promise<number> {
  if (dialect === 'postgres') {
    const rows = await admin.query(
      `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE $1`,
      [`%${table}%`],
    )
    return rows.length
  }
  const rows = await admin.query(
    `SELECT ID AS id FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND INFO LIKE ?`,
    [`%${table}%`],
  )
  for (const row of rows) await admin.query(`KILL ${Number(row.id)}`).catch(() => {})
  return rows.length
}

describe.each(['postgres', 'mysql'] as const)('faults on %s', (dialect) => {
  const fixture = sqlFixture(dialect)
  afterAll(() => fixture.drop())
  const run = it.runIf(available[dialect])

  run('connection refused: consume rejects with a retryable StoreError within the timeout', async () => {
    const uri = dialect === 'postgres' ? 'postgresql://postgres@127.0.0.1:1/test' : 'mysql://root@127.0.0.1:1/test'
    // The adapter's options are all the store reads. (A real @keyv/mysql with the server down
    // rejects a promise of its own unhandled, outside this store.)
    const adapter = { opts: { dialect, uri }, query() {}, get() {}, set() {}, delete() {} }
    const store = createKeyvStore({ keyv: { store: adapter, namespace: 'andromeda' }, commandTimeoutMs: TIMEOUT_MS })
    const quota = createQuota({ name: 'q', store, limit: 10 })
    for (const call of [() => quota.consume('a'), () => quota.refund('a'), () => quota.get('a')]) {
      const { error, ms } = await timed(call)
      expect(StoreError.isInstance(error)).toBe(true)
      expect((error as StoreError).retryable).toBe(true)
      expect(ms).toBeLessThan(BOUND_MS)
    }
    await store.close?.()
  })

  // 800 ms: on MySQL the call gets the row after its deadline, and its own check rolls it back.
  // 1500 ms: past MySQL's one-second lock wait. PostgreSQL's lock wait ends at the deadline.
  for (const holdMs of [800, 1_500]) {
    run(`a call that times out on a row locked for ${holdMs} ms is never applied once the lock goes`, async () => {
      const store = fixture.store({ commandTimeoutMs: TIMEOUT_MS })
      const quota = createQuota({ name: `timeout-${holdMs}`, store, limit: 10 })
      // The steps around the call under test must not time out themselves on a loaded machine.
      const steady = createQuota({
        name: `timeout-${holdMs}`,
        store: fixture.store({ commandTimeoutMs: 10_000 }),
        limit: 10,
      })
      expect(await steady.consume('a')).toMatchObject({ allowed: true, usage: 1 })
      const lock = await lockCounters(dialect, fixture.table, [counterKey(`timeout-${holdMs}`, 'a')])
      const released = sleep(holdMs).then(() => lock.release())
      const { error, ms } = await timed(() => quota.consume('a'))
      console.info(
        `${dialect}: row locked ${holdMs} ms, rejected after ${Math.round(ms)} ms, retryable ${(error as StoreError)?.retryable}`,
      )
      expect(StoreError.isInstance(error)).toBe(true)
      expect(ms).toBeLessThan(BOUND_MS)
      // PostgreSQL's lock wait ends at the call's deadline and rolls back, which the store sees.
      // MySQL bounds lock waits in whole seconds: the store gives up first and cannot tell.
      if (dialect === 'postgres') expect((error as StoreError).retryable).toBe(true)
      await released
      // Long enough for a late statement to land, were it ever to (MySQL waits up to 1 s).
      await sleep(1_200)
      expect((await steady.get('a')).usage).toBe(1)
      expect(await steady.consume('a')).toMatchObject({ allowed: true, usage: 2 })
    })
  }

  run(
    'timed-out calls give their connections back: a pool of 2 keeps answering while two rows stay locked',
    async () => {
      const store = fixture.store(
        { commandTimeoutMs: TIMEOUT_MS },
        dialect === 'postgres' ? { max: 2 } : { connectionLimit: 2 },
      )
      const quota = createQuota({ name: 'starve', store, limit: 10 })
      await quota.consume('x')
      await quota.consume('y')
      const lock = await lockCounters(dialect, fixture.table, [counterKey('starve', 'x'), counterKey('starve', 'y')])
      try {
        const stuck = await Promise.allSettled([quota.consume('x'), quota.consume('y')])
        expect(stuck.every((o) => o.status === 'rejected' && StoreError.isInstance(o.reason))).toBe(true)
        // The rows are still locked (for 4 s): the next calls need the two connections back.
        const started = performance.now()
        const others = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => quota.consume(`other-${i}`)))
        const answered = others.filter((o) => o.status === 'fulfilled' && o.value.allowed).length
        console.info(
          `${dialect}: ${answered} of 6 answered in ${Math.round(performance.now() - started)} ms while 2 rows were locked`,
        )
        expect(answered).toBe(6)
      } finally {
        await lock.release()
      }
    },
  )

  /**
   * Consumes and refunds from 20 workers while another session ends the store's sessions every
   * 60 ms. Returns what each call reported; `key` gives every call an idempotency key.
   */
  const KILL_ROUNDS = 40

  async function runUnderKills(name: string, keyed: boolean) {
    const store = fixture.store({ commandTimeoutMs: 2_000 })
    const quota = createQuota({ name, store, limit: 1_000_000 })
    await quota.consume('hot', 100)
    const admin = await connectAdmin(dialect)
    let killed = 0
    let running = true
    // A bounded number of kill rounds (about 2.5 s of them): on an idle machine a killer that
    // never stops kills every session as it connects, and the run then lasts as long as the
    // calls' retry budgets, not as long as the test means.
    const killer = (async () => {
      for (let round = 0; running && round < KILL_ROUNDS; round++) {
        await sleep(60)
        killed += await killStoreSessions(admin, dialect, fixture.table)
      }
    })()
    const calls: { refund: boolean; key: string; allowed?: boolean; error?: unknown }[] = []
    const worker = async (w: number) => {
      for (let i = 0; i < 60; i++) {
        const call = { refund: i % 3 === 2, key: `call-${w}-${i}` }
        const options = keyed ? { idempotencyKey: call.key } : {}
        try {
          const result = call.refund ? await quota.refund('hot', 1, options) : await quota.consume('hot', 1, options)
          calls.push({ ...call, allowed: result.allowed })
        } catch (error) {
          calls.push({ ...call, error })
        }
      }
    }
    await Promise.all(Array.from({ length: 20 }, (_, w) => worker(w)))
    running = false
    await killer
    await admin.close()
    const failed = calls.filter((c) => c.error !== undefined)
    console.info(
      `${dialect}${keyed ? ' (idempotency keys)' : ''}: ${killed} sessions killed, ${calls.length} calls, ${failed.length} failed`,
    )
    expect(killed).toBeGreaterThan(0)
    expect(failed.every((c) => StoreError.isInstance(c.error))).toBe(true)
    return { quota, calls }
  }

  /**
   * A call after the run, sent again while it fails retryable: the killer's last round may have
   * ended pooled sessions that the pool has not noticed yet, and a call on one fails like any
   * call on a killed session (typed and retryable, never applied).
   */
  async function afterKills<T>(call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await call()
      } catch (error) {
        if (attempt >= 5 || !StoreError.isInstance(error) || !error.retryable) throw error
        await sleep(50)
      }
    }
  }

  const net = (calls: { refund: boolean; allowed?: boolean }[]) =>
    calls.reduce((sum, c) => sum + (c.allowed ? (c.refund ? -1 : 1) : 0), 0)

  run(
    'killed sessions during a run of idempotent consumes and refunds lose or double nothing: usage == granted - refunded',
    async () => {
      const { quota, calls } = await runUnderKills('killed-keyed', true)
      // Every failure carries an idempotency key, so it is safe to send again: a call that was
      // applied replays its result, one that was not is applied now. Then every outcome is known.
      for (const call of calls.filter((c) => c.error !== undefined)) {
        expect((call.error as StoreError).retryable).toBe(true)
        const options = { idempotencyKey: call.key }
        call.allowed = (
          await afterKills(() => (call.refund ? quota.refund('hot', 1, options) : quota.consume('hot', 1, options)))
        ).allowed
      }
      expect((await afterKills(() => quota.get('hot'))).usage).toBe(100 + net(calls))
      // The process is alive and the store still works.
      expect(await afterKills(() => quota.consume('after', 1, { idempotencyKey: 'after' }))).toMatchObject({
        allowed: true,
        usage: 1,
      })
    },
    60_000,
  )

  run(
    'without idempotency keys, only calls that said they may have been applied can differ from the count',
    async () => {
      const { quota, calls } = await runUnderKills('killed-plain', false)
      const maybe = calls.filter((c) => StoreError.isInstance(c.error) && !c.error.retryable)
      const usage = (await afterKills(() => quota.get('hot'))).usage
      const counted = 100 + net(calls)
      console.info(`${dialect}: usage ${usage}, counted ${counted}, ${maybe.length} calls of unknown outcome`)
      // A failure with retryable: true was surely not applied; one with retryable: false may have been.
      expect(usage).toBeGreaterThanOrEqual(counted - maybe.filter((c) => c.refund).length)
      expect(usage).toBeLessThanOrEqual(counted + maybe.filter((c) => !c.refund).length)
    },
    60_000,
  )

  run(
    'consumeAll over the same two counters in opposite orders never deadlocks and grants exactly the limit',
    async () => {
      const store = fixture.store()
      const a = createQuota({ name: 'pair-a', store, limit: 150 })
      const b = createQuota({ name: 'pair-b', store, limit: 150 })
      const calls = Array.from({ length: 200 }, (_, i) =>
        consumeAll(
          i % 2 === 0
            ? [
                { quota: a, id: 'x' },
                { quota: b, id: 'y' },
              ]
            : [
                { quota: b, id: 'y' },
                { quota: a, id: 'x' },
              ],
        ),
      )
      const results = await Promise.all(calls)
      expect(results.filter((r) => r.allowed)).toHaveLength(150)
      expect((await a.get('x')).usage).toBe(150)
      expect((await b.get('y')).usage).toBe(150)
    },
    60_000,
  )

  run('expired rows are missing at once and reclaimed by later writes', async () => {
    const store = fixture.store()
    const quota = createQuota({ name: 'short', store, limit: 10, ttlMs: 50 })
    for (const id of ['e1', 'e2', 'e3']) await quota.consume(id)
    await sleep(120)
    expect((await quota.get('e1')).usage).toBe(0)
    const admin = await connectAdmin(dialect)
    const qualified = dialect === 'postgres' ? `public."${fixture.table}"` : `\`${fixture.table}\``
    const expired = ['e1', 'e2', 'e3'].map((id) => storageKey(counterKey('short', id, 'ttl'), 'key'))
    const expiredRows = async () => {
      let rows = 0
      for (const key of expired) {
        const [row] = await admin.query(
          `SELECT COUNT(*) AS n FROM ${qualified} WHERE storage_key = ${dialect === 'postgres' ? '$1' : '?'}`,
          [key],
        )
        rows += Number(row?.n)
      }
      return rows
    }
    try {
      expect(await expiredRows()).toBe(3)
      // A call that creates a row deletes up to two expired rows of other keys, oldest first
      // (other tests' rows in this table never expire, so these are the oldest).
      await quota.consume('fresh')
      expect(await expiredRows()).toBe(1)
      await quota.consume('fresh-too')
      expect(await expiredRows()).toBe(0)
    } finally {
      await admin.close()
    }
  })
})

describe('PostgreSQL sessions that default to SERIALIZABLE', () => {
  const fixture = sqlFixture('postgres')
  afterAll(() => fixture.drop())

  it.runIf(available.postgres)(
    '200 concurrent consumes on limit 50 grant exactly 50, with no serialization failure',
    async () => {
      const store = fixture.store({}, { options: '-c default_transaction_isolation=serializable' })
      const quota = createQuota({ name: 'serial', store, limit: 50 })
      const outcomes = await Promise.allSettled(Array.from({ length: 200 }, () => quota.consume('hot')))
      expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([])
      expect(outcomes.filter((o) => o.status === 'fulfilled' && o.value.allowed)).toHaveLength(50)
      expect((await quota.get('hot')).usage).toBe(50)
    },
  )

  it.runIf(available.postgres)(
    'a deadlock PostgreSQL reports against another session is retried: the call succeeds and counts once',
    async () => {
      const store = fixture.store({ commandTimeoutMs: 8_000 })
      const a = createQuota({ name: 'dl-a', store, limit: 10 })
      const b = createQuota({ name: 'dl-b', store, limit: 10 })
      await a.consume('x')
      await b.consume('y')
      // The store locks in byte order of the keys; the other session takes them the other way.
      const [first, second] = [counterKey('dl-a', 'x'), counterKey('dl-b', 'y')].sort((p, q) =>
        Buffer.compare(storageKey(p, 'key'), storageKey(q, 'key')),
      )
      const admin = await connectAdmin('postgres')
      const deadlocks = async () =>
        Number(
          (await admin.query(`SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`))[0]
            ?.deadlocks,
        )
      const before = await deadlocks()
      const qualified = `public."${fixture.table}"`
      // PostgreSQL aborts the session whose deadlock check runs first: the store's (1 s after its
      // wait began), never this one, however late a loaded machine runs either check.
      await admin.query("SET deadlock_timeout = '20s'")
      await admin.query('BEGIN')
      await admin.query(`SELECT 1 FROM ${qualified} WHERE storage_key = $1 FOR UPDATE`, [storageKey(second!, 'key')])
      const call = consumeAll([
        { quota: a, id: 'x' },
        { quota: b, id: 'y' },
      ])
      await waitForLockWait(admin) // the store now holds the first row and waits for the second
      // Waits for the store's row: a cycle. The store waited first, so its check finds it first.
      const other = admin.query(`SELECT 1 FROM ${qualified} WHERE storage_key = $1 FOR UPDATE`, [
        storageKey(first!, 'key'),
      ])
      await other
      await sleep(100)
      await admin.query('COMMIT')
      expect(await call).toMatchObject({ allowed: true })
      await admin.query('SELECT pg_stat_clear_snapshot()')
      expect(await deadlocks()).toBeGreaterThan(before)
      await admin.close()
      expect((await a.get('x')).usage).toBe(2)
      expect((await b.get('y')).usage).toBe(2)
    },
    20_000,
  )

  it.runIf(available.postgres)(
    'a serialization failure from PostgreSQL is retried, then a retryable StoreError',
    async () => {
      const { createPostgresDriver } = await import('../src/sql/postgres-driver.js')
      const first = await connectAdmin('postgres')
      const second = await connectAdmin('postgres')
      const table = `serial_${fixture.table}`
      try {
        await first.query(`CREATE TABLE ${table} (k int PRIMARY KEY, v int)`)
        await first.query(`INSERT INTO ${table} VALUES (1, 0)`)
        await first.query('BEGIN ISOLATION LEVEL SERIALIZABLE')
        await first.query(`SELECT v FROM ${table} WHERE k = 1`)
        await second.query(`UPDATE ${table} SET v = 1 WHERE k = 1`)
        const failure = await first.query(`UPDATE ${table} SET v = 2 WHERE k = 1`).catch((e: unknown) => e)
        expect((failure as { code?: string }).code).toBe('40001')
        const driver = createPostgresDriver({
          adapterOptions: {},
          schema: 'public',
          table: 'unused',
          commandTimeoutMs: 100,
          lockTimeoutMs: 80,
        })
        expect(driver.classify(failure, { signal: new AbortController().signal, dueAt: 0, sent: true })).toBe(
          'conflict',
        )
      } finally {
        await first.query('ROLLBACK').catch(() => {})
        await first.query(`DROP TABLE IF EXISTS ${table}`)
        await first.close()
        await second.close()
      }
    },
  )
})
