import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { benchFootprint, redisBytesPerCounter } from './footprint.js'
import { type ScenarioResult, toMarkdown } from './harness.js'
import { benchHttp, httpMarkdown } from './http.js'
import { benchMemory } from './memory.js'
import { FLOOR, benchRedis, commandsPerConsume } from './redis.js'

const args = new Set(process.argv.slice(2))
const quick = args.has('--quick')
const rounds = quick ? 3 : 7
const total = quick ? 5_000 : 50_000

const sections: string[] = []
const json: Record<string, unknown> = {
  date: new Date().toISOString(),
  quick,
  machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memoryGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version },
}

const report = (title: string, results: ScenarioResult[], floor?: string) => {
  sections.push(`### ${title}\n`, ...results.map((r) => toMarkdown(r, floor)))
  json[title] = results
  for (const r of results) console.log(toMarkdown(r, floor))
}

const only = [...args].find((a) => a.startsWith('--only='))?.slice('--only='.length).split(',')
const wanted = (section: string) => !only || only.includes(section)

if (wanted('memory')) report('Memory path', await benchMemory({ rounds, total }))

if (wanted('redis')) {
  report('Redis path', await benchRedis({ rounds: quick ? 3 : 5, total: quick ? 2_000 : 20_000, quick }), FLOOR)
  const commands = await commandsPerConsume()
  json.commandsPerConsume = commands
  const table = [
    '**Commands the client sends per consume on a present key** (MONITOR, script-internal calls skipped)',
    '',
    '| contender | commands |',
    '|---|---:|',
    ...commands.map((c) => `| ${c.name} | ${c.commands.toFixed(2)} |`),
    '',
  ].join('\n')
  sections.push(table)
  console.log(table)
}

if (wanted('http')) {
  const figures = await benchHttp({ rounds: quick ? 1 : 3, durationSeconds: quick ? 2 : 5, connections: 50 })
  json.http = figures
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
console.log(`wrote bench/results/${name}.md and .json`)
