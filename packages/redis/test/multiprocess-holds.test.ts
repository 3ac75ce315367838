import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { createQuota } from '@andromeda/core'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRedisStore } from '../src/index.js'
import { bundleFixture } from './bundle-fixture.js'
import { canConnect, deleteKeys, randomPrefix, requireService, SHARED_REDIS } from './helpers.js'

const available = requireService(await canConnect(SHARED_REDIS.port), `Redis on 127.0.0.1:${SHARED_REDIS.port}`)
/** The bundled child-process fixture (see `bundle-fixture.ts`), built before the tests run. */
let fixture = ''
const PROCESSES = 4
const LIMIT = 120
/** Each process: 20 reserves of 3 units at once (240 units asked of 120), committing 2 of each 3. */
const RESERVES = 20
const COST = 3
const KEEP = 2
const HOLD_MS = 4000

interface Report {
  held: number
  committed?: number
  overLimit: number
  errors?: string[]
}

/** The first line `child` writes after `ready`. */
function report(child: ChildProcess): Promise<Report> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', (line) => {
      if (line !== 'ready') resolve(JSON.parse(line) as Report)
    })
    child.once('exit', (code, signal) => reject(new Error(`child exited (${signal ?? code}) without a report`)))
  })
}

/** Reads the counter's raw value (held units count in it) as fast as it can until stopped. */
function sample(client: Redis, key: string) {
  let stopped = false
  let max = 0
  let count = 0
  const done = (async () => {
    while (!stopped) {
      max = Math.max(max, Number((await client.get(key)) ?? '0'))
      count++
    }
  })()
  return {
    async stop() {
      stopped = true
      await done
      return { max, count }
    },
  }
}

describe.runIf(available)(
  `${PROCESSES} processes reserve on one counter, the survivors concurrently against the holds of one SIGKILLed before it commits`,
  () => {
    const prefix = randomPrefix('holds')
    let admin: Redis
    let sampler: Redis

    beforeAll(async () => {
      admin = new Redis(SHARED_REDIS.port)
      sampler = new Redis(SHARED_REDIS.port)
      fixture = await bundleFixture('holder')
    })
    afterAll(async () => {
      await deleteKeys(admin, prefix)
      admin.disconnect()
      sampler.disconnect()
    })

    for (const batch of ['on', 'off']) {
      it(`usage never passes the limit at any moment, and after the hold time equals the units the survivors committed (batching ${batch})`, async () => {
        const name = `holds-${randomBytes(4).toString('hex')}`
        const key = `${prefix}{${name}:v1}:usage`
        const env = {
          ...process.env,
          REDIS_PORT: String(SHARED_REDIS.port),
          KEY_PREFIX: prefix,
          QUOTA_NAME: name,
          QUOTA_ID: 'v1',
          LIMIT: String(LIMIT),
          RESERVES: String(RESERVES),
          COST: String(COST),
          KEEP: String(KEEP),
          HOLD_MS: String(HOLD_MS),
          BATCH: batch,
        }
        // Child 0 dies holding its units; the others commit.
        const children = Array.from({ length: PROCESSES }, (_, i) =>
          spawn(process.execPath, [fixture], {
            env: { ...env, DIE: i === 0 ? '1' : '0' },
            stdio: ['pipe', 'pipe', 'inherit'],
          }),
        )
        const exits = children.map((child) => once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>)
        try {
          const readies = children.map(
            (child) =>
              new Promise<void>((resolve, reject) => {
                createInterface({ input: child.stdout! }).once('line', (line) =>
                  line === 'ready' ? resolve() : reject(new Error(line)),
                )
                child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)))
              }),
          )
          await Promise.all(readies)
          const reports = children.map(report)
          const watch = sample(sampler, key)
          // The one that dies reserves first, so it surely holds units when it is killed; the
          // others then reserve concurrently against its holds.
          children[0]!.stdin!.end('go\n')
          const dying = await reports[0]!
          for (const child of children.slice(1)) child.stdin!.end('go\n')
          children[0]!.kill('SIGKILL')
          expect(await exits[0]).toEqual([null, 'SIGKILL'])
          const killedAt = Date.now()
          const survivors = await Promise.all(reports.slice(1))
          for (const [code] of await Promise.all(exits.slice(1))) expect(code).toBe(0)
          const { max, count } = await watch.stop()

          expect(survivors.flatMap((r) => r.errors ?? [])).toEqual([])
          expect([dying, ...survivors].reduce((n, r) => n + r.overLimit, 0)).toBe(0)
          // The sampler read the counter throughout, and never above the limit.
          expect(count).toBeGreaterThan(0)
          expect(max).toBeLessThanOrEqual(LIMIT)
          // More was asked than fits: some reserves were refused.
          const granted = [dying, ...survivors].reduce((n, r) => n + r.held, 0)
          expect(granted).toBeLessThan(PROCESSES * RESERVES * COST)
          expect(dying.held).toBeGreaterThan(0)

          const committed = survivors.reduce((n, r) => n + (r.committed ?? 0), 0)
          expect(committed).toBeGreaterThan(0)
          // With no process left to settle them, the dead one's units are still held...
          const quota = createQuota({ name, store: createRedisStore({ client: admin, prefix }), limit: LIMIT })
          expect((await quota.get('v1')).usage).toBe(committed + dying.held)
          // ...until the hold time has passed: then they are back, and only the commits remain.
          await sleep(Math.max(HOLD_MS - (Date.now() - killedAt), 0) + 100)
          expect((await quota.get('v1')).usage).toBe(committed)
          expect(Number(await admin.get(key))).toBe(committed)
        } finally {
          for (const child of children) child.kill('SIGKILL')
        }
      })
    }
  },
)
