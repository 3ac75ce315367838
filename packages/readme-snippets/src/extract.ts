import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'

/**
 * What to do with a snippet beyond type-checking it, from an HTML comment (invisible on
 * GitHub) on the line before its fence:
 *
 * - no comment: run it; it must exit by itself with code 0 (so it closes what it opened).
 * - `<!-- snippet: stdout "text" -->`: run it, and its output must contain `text`.
 * - `<!-- snippet: server GET /path 200 -->`: a server; start it with `PORT` set, request the
 *   path, expect the status, then SIGTERM it: it must exit by itself with code 0. A JSON object
 *   after the status gives the request's `headers` and JSON `body`:
 *   `<!-- snippet: server POST /v1/x 200 {"headers":{"x-api-key":"k"},"body":{"a":1}} -->`.
 * - `<!-- snippet: vitest -->`: a vitest test file; run it with vitest, which must pass.
 * - `<!-- snippet: typecheck-only: why -->`: type-check only (it needs what a test run lacks).
 *
 * Directives may be combined with `;`. Every snippet that runs gets `REDIS_URL` pointing at a
 * redis-server of the test's own.
 */
export type Run =
  | { kind: 'exit' }
  | { kind: 'stdout'; text: string }
  | { kind: 'server'; method: string; path: string; status: number; headers?: Record<string, string>; body?: unknown }
  | { kind: 'vitest' }
  | { kind: 'typecheck-only'; reason: string }

export interface Snippet {
  /** The README's path from the repository root. */
  readme: string
  /** 1-based line of the opening fence. */
  line: number
  code: string
  run: Run
  /** A file name for the snippet: `<readme>-<line>` (`.test` added for a vitest file). */
  slug: string
}

const FENCE = /^```(ts|typescript)\b/
const DIRECTIVE = /^<!--\s*snippet:\s*(.*?)\s*-->$/

function parseRun(directive: string | undefined, where: string): Run {
  if (directive === undefined) return { kind: 'exit' }
  for (const part of directive.split(';').map((p) => p.trim())) {
    const stdout = /^stdout\s+"(.*)"$/.exec(part)
    if (stdout) return { kind: 'stdout', text: stdout[1]! }
    const server = /^server\s+([A-Z]+)\s+(\S+)\s+(\d{3})(?:\s+(\{.*\}))?$/.exec(part)
    if (server) {
      const request =
        server[4] === undefined ? {} : (JSON.parse(server[4]) as { headers?: Record<string, string>; body?: unknown })
      return { kind: 'server', method: server[1]!, path: server[2]!, status: Number(server[3]), ...request }
    }
    if (part === 'vitest') return { kind: 'vitest' }
    const only = /^typecheck-only:\s*(.+)$/.exec(part)
    if (only) return { kind: 'typecheck-only', reason: only[1]! }
    throw new Error(`${where}: unknown snippet directive "${part}"`)
  }
  return { kind: 'exit' }
}

/** Every ```ts block of one README, with what to do with it. */
export function extractSnippets(root: string, readmePath: string): Snippet[] {
  const readme = relative(root, readmePath)
  const lines = readFileSync(readmePath, 'utf8').split('\n')
  const snippets: Snippet[] = []
  for (let i = 0; i < lines.length; i++) {
    if (!FENCE.test(lines[i]!)) continue
    const start = i
    const body: string[] = []
    for (i++; i < lines.length && !lines[i]!.startsWith('```'); i++) body.push(lines[i]!)
    const previous = lines[start - 1]?.trim() ?? ''
    const directive = DIRECTIVE.exec(previous)?.[1]
    const where = `${readme}:${start + 1}`
    const run = parseRun(directive, where)
    snippets.push({
      readme,
      line: start + 1,
      code: `${body.join('\n')}\n`,
      run,
      slug: `${readme.replace(/[^a-zA-Z0-9]+/g, '-').replace(/^-|-$/g, '')}-${start + 1}${run.kind === 'vitest' ? '.test' : ''}`,
    })
  }
  return snippets
}

/** The root README, and the README of every package and every example. */
export function readmes(root: string): string[] {
  const inFolder = (folder: string) =>
    readdirSync(join(root, folder))
      .sort()
      .map((name) => join(root, folder, name, 'README.md'))
      .filter((path) => existsSync(path))
  return [join(root, 'README.md'), ...inFolder('packages'), ...inFolder('examples')]
}
