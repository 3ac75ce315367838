import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { benchFootprint } from './footprint.js'
import { type ScenarioResult, toMarkdown } from './harness.js'
import { benchMemory } from './memory.js'

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

report('Memory path', await benchMemory({ rounds, total }))

const footprint = await benchFootprint(quick ? 20_000 : 100_000)
json.footprint = footprint
const footprintTable = [
  '### Footprint (bytes of heap per live counter)',
  '',
  '| store | bytes/counter | ÷ bare lru-cache |',
  '|---|---:|---:|',
  `| bare lru-cache of numbers | ${footprint.bareLruCache.toFixed(0)} | 1.00x |`,
  `| @andromeda/memory, no TTL | ${footprint.memoryStore.toFixed(0)} | ${(footprint.memoryStore / footprint.bareLruCache).toFixed(2)}x |`,
  `| @andromeda/memory, with TTL | ${footprint.memoryStoreWithTtl.toFixed(0)} | ${(footprint.memoryStoreWithTtl / footprint.bareLruCache).toFixed(2)}x |`,
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
