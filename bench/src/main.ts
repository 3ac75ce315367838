import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { httpRatios, type RatioPoint, ratioChart, throughputRatios } from './chart.js'
import { benchFootprint, redisBytesPerCounter } from './footprint.js'
import { type ScenarioResult, toMarkdown } from './harness.js'
import { benchHttp, httpMarkdown } from './http.js'
import { benchMemory } from './memory.js'
import { benchPostgres, POSTGRES_FLOOR, postgresReachable, redisReachable } from './postgres.js'
import { benchRedis, commandsPerConsume, FLOOR, leftoverKeys, RUN_TOKEN } from './redis.js'
import { benchReplicas } from './replicas.js'

const args = new Set(process.argv.slice(2))
const quick = args.has('--quick')
const rounds = quick ? 3 : 7
const total = quick ? 5_000 : 50_000

const sections: string[] = []
const json: Record<string, unknown> = {
  date: new Date().toISOString(),
  quick,
  machine: {
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  },
}

const ratios: RatioPoint[] = []
const report = (title: string, results: ScenarioResult[], floor?: string) => {
  sections.push(`### ${title}\n`, ...results.map((r) => toMarkdown(r, floor)))
  json[title] = results
  for (const r of results) console.log(toMarkdown(r, floor))
}

const only = [...args]
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',')
const wanted = (section: string) => !only || only.includes(section)

if (wanted('memory')) {
  const results = await benchMemory({ rounds, total })
  report('Memory path', results)
  ratios.push(...throughputRatios(results, 'memory'))
}

if (wanted('redis')) {
  const results = await benchRedis({ rounds: quick ? 3 : 5, total: quick ? 2_000 : 20_000, quick })
  report('Redis path', results, FLOOR)
  // The chart keeps the default client settings (auto-pipelining off), like the targets.
  ratios.push(
    ...throughputRatios(
      results.filter((r) => r.scenario.endsWith('auto-pipelining off')),
      'redis',
    ),
  )
  const concurrencies = [1, 50]
  const counts = await Promise.all(
    concurrencies.map(async (c) => ({ concurrency: c, commands: await commandsPerConsume(c) })),
  )
  json.commandsPerConsume = counts
  const names = counts[0]!.commands.map((c) => c.name)
  const table = [
    '**Commands the client sends per consume on a present key** (MONITOR, script-internal calls skipped)',
    '',
    `| contender | ${concurrencies.map((c) => `concurrency ${c}`).join(' | ')} |`,
    `|---|${concurrencies.map(() => '---:').join('|')}|`,
    ...names.map(
      (name) =>
        `| ${name} | ${counts.map((c) => c.commands.find((x) => x.name === name)!.commands.toFixed(2)).join(' | ')} |`,
    ),
    '',
  ].join('\n')
  sections.push(table)
  console.log(table)
}

if (wanted('postgres')) {
  if (await postgresReachable())
    report(
      'Postgres path',
      await benchPostgres({
        rounds: quick ? 3 : 5,
        total: quick ? 2_000 : 10_000,
        quick,
        withRedis: await redisReachable(),
      }),
      POSTGRES_FLOOR,
    )
  else console.error('postgres: skipped (no PostgreSQL at POSTGRES_URL)')
}

if (wanted('replicas')) {
  const results = await benchReplicas({ rounds: quick ? 3 : 5, total: quick ? 2_000 : 20_000, quick })
  if (results.length > 0) report('Redis Cluster with replicas: the replicas option', results)
}

if (wanted('http')) {
  const figures = await benchHttp({ rounds: quick ? 1 : 3, durationSeconds: quick ? 2 : 5, connections: 50 })
  json.http = figures
  ratios.push(...httpRatios(figures))
  const table = httpMarkdown(figures)
  sections.push('### HTTP path\n', table)
  console.log(table)
}

const footprint = await benchFootprint(quick ? 20_000 : 100_000)
json.footprint = footprint
const redisBytes = wanted('redis') ? await redisBytesPerCounter() : undefined
const footprintTable = [
  '### Footprint (bytes of heap per live counter)',
  '',
  '| store | bytes/counter | ÷ bare lru-cache |',
  '|---|---:|---:|',
  `| bare lru-cache of numbers | ${footprint.bareLruCache.toFixed(0)} | 1.00x |`,
  `| @andromeda/memory, no TTL | ${footprint.memoryStore.toFixed(0)} | ${(footprint.memoryStore / footprint.bareLruCache).toFixed(2)}x |`,
  `| @andromeda/memory, with TTL | ${footprint.memoryStoreWithTtl.toFixed(0)} | ${(footprint.memoryStoreWithTtl / footprint.bareLruCache).toFixed(2)}x |`,
  ...(redisBytes === undefined ? [] : [`| Redis, one counter with TTL (MEMORY USAGE) | ${redisBytes} | — |`]),
  '',
].join('\n')
sections.push(footprintTable)
console.log(footprintTable)

const m = json.machine as Record<string, unknown>
const header = `Run ${json.date} on ${m.cpus} x ${m.cpu}, ${m.memoryGiB} GiB, Node ${m.node}${quick ? ' (--quick)' : ''}. Median of ${rounds} alternating rounds of ${total.toLocaleString('en-US')} awaited ops; spread is min..max.\n`
mkdirSync(new URL('../results/', import.meta.url), { recursive: true })
const name = quick ? 'quick' : 'latest'
writeFileSync(new URL(`../results/${name}.md`, import.meta.url), [header, ...sections].join('\n'))
writeFileSync(new URL(`../results/${name}.json`, import.meta.url), `${JSON.stringify(json, null, 2)}\n`)
if (ratios.length > 0) {
  const title = `andromeda ÷ peers and floor (${quick ? 'quick run' : 'full run'}, ${m.cpus} cores, Node ${m.node})`
  writeFileSync(new URL(`../results/${name}.svg`, import.meta.url), await ratioChart(ratios, title))
}
console.log(`wrote bench/results/${name}.md, .json${ratios.length > 0 ? ' and .svg' : ''}`)

// Whatever the bench wrote into Redis is gone, or the run fails.
if (wanted('redis') || wanted('http') || wanted('postgres')) {
  const left = await leftoverKeys()
  if (left > 0) {
    console.error(`the bench left ${left} key(s) matching *${RUN_TOKEN}* in Redis`)
    process.exitCode = 1
  } else console.log(`Redis: no key of this run (${RUN_TOKEN}) left behind`)
}
