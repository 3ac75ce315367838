import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import autocannon from 'autocannon'
import { median } from './harness.js'
import { FASTIFY_CONTENDERS, FASTIFY_SERVER } from './http-fastify.js'

export const HTTP_CONTENDERS = [
  'bare express',
  'expressQuota + memory',
  'expressQuota + redis',
  'express-rate-limit (memory)',
  'express-rate-limit + rate-limit-redis',
  'rate-limiter-flexible (memory) middleware',
  ...FASTIFY_CONTENDERS,
]

export interface HttpFigure {
  name: string
  requestsPerSecond: number
  min: number
  max: number
  p99Ms: number
  non2xx: number
}

async function startServer(name: string): Promise<{ child: ChildProcess; port: number }> {
  const script = FASTIFY_CONTENDERS.includes(name) ? FASTIFY_SERVER : new URL('./http-server.ts', import.meta.url).pathname
  const child = spawn(process.execPath, ['--import', 'tsx', script, name], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const [line] = (await once(child.stdout!, 'data')) as [Buffer]
  return { child, port: JSON.parse(line.toString()).port }
}

/** Requests/s of each contender under autocannon, alternating contenders for `rounds` rounds. */
export async function benchHttp(options: { rounds: number; durationSeconds: number; connections: number }): Promise<HttpFigure[]> {
  const rates = new Map(HTTP_CONTENDERS.map((n) => [n, [] as number[]]))
  const p99 = new Map(HTTP_CONTENDERS.map((n) => [n, [] as number[]]))
  const non2xx = new Map(HTTP_CONTENDERS.map((n) => [n, 0]))
  for (let round = 0; round < options.rounds; round++) {
    for (const name of HTTP_CONTENDERS) {
      const { child, port } = await startServer(name)
      try {
        await autocannon({ url: `http://127.0.0.1:${port}/`, connections: options.connections, duration: 1 }) // warm-up
        const result = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: options.connections, duration: options.durationSeconds })
        rates.get(name)!.push(result.requests.average)
        p99.get(name)!.push(result.latency.p99)
        non2xx.set(name, non2xx.get(name)! + result.non2xx + result.errors)
      } finally {
        child.kill('SIGTERM')
        await once(child, 'exit')
      }
    }
  }
  return HTTP_CONTENDERS.map((name) => {
    const values = rates.get(name)!
    return {
      name,
      requestsPerSecond: median(values),
      min: Math.min(...values),
      max: Math.max(...values),
      p99Ms: median(p99.get(name)!),
      non2xx: non2xx.get(name)!,
    }
  })
}

export function httpMarkdown(figures: HttpFigure[]): string {
  // Each row against its own framework: bare Express / expressQuota, or bare Fastify / fastifyQuota.
  const fastify = (f: HttpFigure) => FASTIFY_CONTENDERS.includes(f.name)
  const bareOf = (f: HttpFigure) => figures.find((b) => b.name === (fastify(f) ? 'bare fastify' : 'bare express'))!
  const oursOf = (f: HttpFigure) => figures.find((o) => o.name === (fastify(f) ? 'fastifyQuota + memory' : 'expressQuota + memory'))!
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
  return [
    '**HTTP path** (autocannon from another process, 1 key, keep-alive)',
    '',
    '| server | median req/s | spread | p99 ms | ÷ bare framework | andromeda+memory ÷ this | non-2xx |',
    '|---|---:|---:|---:|---:|---:|---:|',
    ...figures.map(
      (f) =>
        `| ${f.name} | ${fmt(f.requestsPerSecond)} | ${fmt(f.min)}..${fmt(f.max)} | ${f.p99Ms} | ${(f.requestsPerSecond / bareOf(f).requestsPerSecond).toFixed(2)}x | ${(oursOf(f).requestsPerSecond / f.requestsPerSecond).toFixed(2)}x | ${f.non2xx} |`,
    ),
    '',
  ].join('\n')
}
