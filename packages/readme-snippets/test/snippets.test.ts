import { randomBytes } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  freePort,
  hasRedisServerBinary,
  type OwnRedis,
  postgresAnswers,
  requireService,
  startRedis,
} from '@andromeda/test-utils'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { compileSnippets, outputOf } from '../src/compile.js'
import { extractSnippets, readmes } from '../src/extract.js'
import { runServer, runToExit, runVitest } from '../src/run.js'

// Every ```ts snippet of every README is type-checked as a user's strict project would check it
// (strict, exactOptionalPropertyTypes, NodeNext, against the built packages), then run: to its
// end (it must close what it opened, or it would not exit), or as a server that must answer
// and then stop on SIGTERM. See src/extract.ts for the comments that say how a snippet runs.

const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, '../../..')
const work = resolve(here, '../.work')
const srcDir = join(work, 'src')
const outDir = join(work, 'out')
const snippets = readmes(root).flatMap((readme) => extractSnippets(root, readme))
const fileOf = (slug: string) => join(srcDir, `${slug}.ts`)

const RUN_TIMEOUT_MS = 30_000
const VITEST_TIMEOUT_MS = 120_000

// The snippets import the packages as users do, through their built `dist`.
const built = [
  'core',
  'memory',
  'redis',
  'keyv',
  'express',
  'koa',
  'fastify',
  'hono',
  'opentelemetry',
  'store-test-suite',
].every((name) => existsSync(join(root, 'packages', name, 'dist', 'index.js')))
if (!built) throw new Error('the packages are not built: run `pnpm build` first (`pnpm test` builds them itself)')

// Snippets that run get a redis-server of this test's own (REDIS_URL), never the shared one,
// and a PostgreSQL database of their own (DATABASE_URL), created on the local server and dropped.
const canRun = requireService(
  await hasRedisServerBinary(),
  'redis-server on PATH (the README snippets run against one of their own)',
)
const POSTGRES = 'postgres://postgres@127.0.0.1:5432'
const hasPostgres = requireService(await postgresAnswers(`${POSTGRES}/postgres`), `PostgreSQL at ${POSTGRES}`)
const database = `andromeda_snippets_${randomBytes(4).toString('hex')}`

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: `${POSTGRES}/postgres` })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

let diagnostics: Map<string, string[]>
let redis: OwnRedis | undefined

beforeAll(async () => {
  rmSync(work, { recursive: true, force: true })
  mkdirSync(srcDir, { recursive: true })
  writeFileSync(join(work, 'package.json'), `${JSON.stringify({ private: true, type: 'module' })}\n`)
  copyFileSync(join(here, '../fixtures/db.ts'), join(srcDir, 'db.ts'))
  for (const snippet of snippets) writeFileSync(fileOf(snippet.slug), snippet.code)
  diagnostics = compileSnippets(
    srcDir,
    outDir,
    snippets.map((snippet) => fileOf(snippet.slug)),
  )
  if (canRun) redis = await startRedis()
  if (hasPostgres) await admin(`CREATE DATABASE ${database}`)
})

afterAll(async () => {
  await redis?.destroy()
  if (hasPostgres) await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
})

it('finds the snippets of every README', () => {
  const readmesWithSnippets = new Set(snippets.map((snippet) => snippet.readme))
  for (const readme of [
    'README.md',
    'packages/core/README.md',
    'packages/redis/README.md',
    'packages/fastify/README.md',
    'packages/hono/README.md',
    'examples/token-budget/README.md',
  ]) {
    expect(readmesWithSnippets).toContain(readme)
  }
})

for (const snippet of snippets) {
  describe(`${snippet.readme}:${snippet.line}`, () => {
    it('type-checks under strict, exactOptionalPropertyTypes and NodeNext', () => {
      expect(diagnostics.get(fileOf(snippet.slug))).toEqual([])
    })

    const { run } = snippet
    // Only type-checked, by its own README's say-so (the reason is in the README).
    if (run.kind === 'typecheck-only') return
    const title =
      run.kind === 'server'
        ? `serves ${run.method} ${run.path} with ${run.status}, then stops on SIGTERM`
        : run.kind === 'vitest'
          ? 'passes under vitest'
          : 'runs and exits by itself'
    it.runIf(canRun && hasPostgres)(title, { timeout: VITEST_TIMEOUT_MS + 10_000 }, async () => {
      const file = outputOf(srcDir, outDir, fileOf(snippet.slug))
      const env = { REDIS_URL: `redis://127.0.0.1:${redis!.port}`, DATABASE_URL: `${POSTGRES}/${database}` }
      const ran =
        run.kind === 'server'
          ? await runServer(file, env, await freePort(), run, RUN_TIMEOUT_MS)
          : run.kind === 'vitest'
            ? await runVitest(file, { ...env, ANDROMEDA_PROPERTY_RUNS: '20' }, VITEST_TIMEOUT_MS)
            : await runToExit(file, env, RUN_TIMEOUT_MS)
      const report = `stdout:\n${ran.stdout}\nstderr:\n${ran.stderr}`
      expect(ran.timedOut, `it did not exit in time\n${report}`).toBe(false)
      expect(ran.code, report).toBe(0)
      if (run.kind === 'server') expect((ran as { status?: number }).status, report).toBe(run.status)
      if (run.kind === 'stdout') expect(ran.stdout, report).toContain(run.text)
    })
  })
}
