import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFixture } from './bundle-fixture.js'
import { canConnect, deleteKeys, randomPrefix, requireService, SHARED_REDIS } from './helpers.js'

const available = requireService(await canConnect(SHARED_REDIS.port), `Redis on 127.0.0.1:${SHARED_REDIS.port}`)
/** The bundled child-process fixture (see `bundle-fixture.ts`), built before the tests run. */
let fixture = ''
const PROCESSES = 4
const CONSUMES = 500

interface MixReport {
  granted: number
  refunded: number
  outOfRange: number
  errors: string[]
}

interface ChildReport {
  allowed: number
  refused: number
  errors: string[]
  errorCount: number
  loads: number
}

/** Start every child, wait until all are connected, release them at once, collect reports. */
async function runChildren(
  env: Record<string, string>,
  perChild: (i: number) => Record<string, string> = () => ({}),
): Promise<ChildReport[]> {
  const children = Array.from({ length: PROCESSES }, (_, i) =>
    spawn(process.execPath, [fixture], {
      env: { ...process.env, ...env, ...perChild(i), CONSUMES: String(CONSUMES) },
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  )
  const outputs = children.map((child) => {
    let out = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
    })
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', () => out.includes('ready\n') && resolve())
      child.once('exit', (code) => reject(new Error(`child exited early with ${code}`)))
    })
    const done = new Promise<string>((resolve, reject) =>
      child.once('exit', (code) =>
        code === 0 ? resolve(out) : reject(new Error(`child exited with ${code}: ${out}`)),
      ),
    )
    return { ready, done }
  })
  await Promise.all(outputs.map((o) => o.ready))
  for (const child of children) child.stdin.end('go\n')
  const texts = await Promise.all(outputs.map((o) => o.done))
  return texts.map((text) => JSON.parse(text.trim().split('\n').pop()!) as ChildReport)
}

describe.runIf(available)(`${PROCESSES} processes x ${CONSUMES} concurrent consumes on one id`, () => {
  const prefix = randomPrefix('procs')
  let admin: Redis

  beforeAll(async () => {
    admin = new Redis(SHARED_REDIS.port)
    fixture = await bundleFixture('consumer')
  })
  afterAll(async () => {
    await deleteKeys(admin, prefix)
    admin.disconnect()
  })

  const base = () => ({
    REDIS_PORT: String(SHARED_REDIS.port),
    KEY_PREFIX: prefix,
    QUOTA_NAME: `procs-${randomBytes(4).toString('hex')}`,
    QUOTA_ID: 'v1',
    LIMIT: '1000',
  })

  for (const batch of ['on', 'off']) {
    it(`limit 1000: exactly 1000 allowed in total (batching ${batch})`, async () => {
      const reports = await runChildren({ ...base(), BATCH: batch })
      expect(reports.flatMap((r) => r.errors)).toEqual([])
      expect(reports.reduce((sum, r) => sum + r.allowed, 0)).toBe(1000)
      expect(reports.reduce((sum, r) => sum + r.refused, 0)).toBe(PROCESSES * CONSUMES - 1000)
    })
  }

  for (const [seed, batch] of [
    [randomBytes(4).readUInt32LE(0), 'on'],
    [randomBytes(4).readUInt32LE(0), 'off'],
  ] as const) {
    it(`random concurrent consumes and refunds from every process end with usage == granted - refunded, within [0, limit] (seed ${seed}, batching ${batch})`, async () => {
      const env = { ...base(), LIMIT: '300', BATCH: batch }
      // Each process gets its own seed derived from the printed one, so a failure can be replayed.
      const reports = (await runChildren(env, (i) => ({ MIX_SEED: String(seed + i) }))) as unknown as MixReport[]
      expect(reports.flatMap((r) => r.errors)).toEqual([])
      expect(reports.reduce((sum, r) => sum + r.outOfRange, 0)).toBe(0)
      const granted = reports.reduce((sum, r) => sum + r.granted, 0)
      const refunded = reports.reduce((sum, r) => sum + r.refunded, 0)
      const usage = Number((await admin.get(`${prefix}{${env.QUOTA_NAME}:v1}:usage`)) ?? '0')
      expect(usage).toBe(granted - refunded)
      expect(usage).toBeGreaterThanOrEqual(0)
      expect(usage).toBeLessThanOrEqual(300)
      expect(granted).toBeGreaterThan(0)
      expect(refunded).toBeGreaterThan(0)
    })
  }

  it('limit 1000 with loadUsage returning 400: exactly 600 allowed, loadUsage at most once per process', async () => {
    const env = { ...base(), LOAD_USAGE: '400' }
    const reports = await runChildren(env)
    expect(reports.flatMap((r) => r.errors)).toEqual([])
    expect(reports.reduce((sum, r) => sum + r.allowed, 0)).toBe(600)
    for (const report of reports) expect(report.loads).toBeLessThanOrEqual(1)
    expect(await admin.get(`${prefix}{${env.QUOTA_NAME}:v1}:usage`)).toBe('1000')
  })
})
