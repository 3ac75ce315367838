import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import autocannon from 'autocannon'
import { median } from './harness.js'
import { deleteRunKeys, RUN_TOKEN } from './redis.js'

/** Servers by framework, each measured against the framework's bare app (the first). */
export const HTTP_CONTENDERS = {
  express: [
    'bare express',
    'expressQuota + memory',
    'expressQuota + memory, refundWhen: false',
    'expressQuota + redis',
    'express-rate-limit (memory)',
    'express-rate-limit + rate-limit-redis',
    'rate-limiter-flexible (memory) middleware',
    'rate-limiter-flexible (redis) middleware',
  ],
  koa: ['bare koa', 'koaQuota + memory', 'koaQuota + redis'],
  fastify: [
    'bare fastify',
    'fastifyQuota + memory',
    'fastifyQuota + memory, refundWhen: false',
    'fastifyQuota + redis',
    '@fastify/rate-limit (memory)',
  ],
} as const

export interface HttpFigure {
  name: string
  framework: keyof typeof HTTP_CONTENDERS
  requestsPerSecond: number
  min: number
  max: number
  p99Ms: number
  /**
   * Server CPU (user + system) per request served, µs: the figure that does not depend on the
   * load generator, which shares the machine's cores with the server.
   */
  cpuMicrosPerRequest: number
  non2xx: number
}

async function startServer(name: string): Promise<{ child: ChildProcess; port: number }> {
  // From the workspace's TypeScript sources when asked (the bench's own test), else the built packages.
  const conditions = process.env.BENCH_FROM_SOURCE === '1' ? ['--conditions=@andromeda/source'] : []
  const child = spawn(
    process.execPath,
    [...conditions, '--import', 'tsx', new URL('./http-server.ts', import.meta.url).pathname, name],
    {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
      env: { ...process.env, BENCH_RUN_TOKEN: RUN_TOKEN },
    },
  )
  const [line] = (await once(child.stdout!, 'data')) as [Buffer]
  return { child, port: JSON.parse(line.toString()).port }
}

async function ask<T>(child: ChildProcess, message: string): Promise<T> {
  const answer = once(child, 'message') as Promise<[T]>
  child.send(message)
  return (await answer)[0]
}

/** Requests/s and server CPU per request of each contender under autocannon, alternating contenders for `rounds` rounds. */
export async function benchHttp(options: {
  rounds: number
  durationSeconds: number
  connections: number
}): Promise<HttpFigure[]> {
  const all = Object.entries(HTTP_CONTENDERS).flatMap(([framework, names]) =>
    names.map((name) => ({ name, framework: framework as keyof typeof HTTP_CONTENDERS })),
  )
  const rates = new Map(all.map(({ name }) => [name, [] as number[]]))
  const p99 = new Map(all.map(({ name }) => [name, [] as number[]]))
  const cpu = new Map(all.map(({ name }) => [name, [] as number[]]))
  const non2xx = new Map(all.map(({ name }) => [name, 0]))
  for (let round = 0; round < options.rounds; round++) {
    for (const { name } of all) {
      const { child, port } = await startServer(name)
      try {
        await autocannon({ url: `http://127.0.0.1:${port}/`, connections: options.connections, duration: 1 }) // warm-up
        await ask(child, 'start')
        const result = await autocannon({
          url: `http://127.0.0.1:${port}/`,
          connections: options.connections,
          duration: options.durationSeconds,
        })
        const usage = await ask<{ cpuMicros: number; requests: number }>(child, 'stop')
        rates.get(name)!.push(result.requests.average)
        p99.get(name)!.push(result.latency.p99)
        cpu.get(name)!.push(usage.cpuMicros / Math.max(usage.requests, 1))
        non2xx.set(name, non2xx.get(name)! + result.non2xx + result.errors)
      } finally {
        child.kill('SIGTERM')
        await once(child, 'exit')
        // The servers' counters (Redis contenders) carry the run token.
        await deleteRunKeys()
      }
    }
  }
  return all.map(({ name, framework }) => {
    const values = rates.get(name)!
    return {
      name,
      framework,
      requestsPerSecond: median(values),
      min: Math.min(...values),
      max: Math.max(...values),
      p99Ms: median(p99.get(name)!),
      cpuMicrosPerRequest: median(cpu.get(name)!),
      non2xx: non2xx.get(name)!,
    }
  })
}

export function httpMarkdown(figures: HttpFigure[]): string {
  const fmt = (n: number) => Math.round(n).toLocaleString('en-US')
  const sections: string[] = []
  for (const framework of Object.keys(HTTP_CONTENDERS) as (keyof typeof HTTP_CONTENDERS)[]) {
    const rows = figures.filter((f) => f.framework === framework)
    const bare = rows[0]!
    sections.push(
      `**HTTP path, ${framework}** (autocannon from another process, 1 key, keep-alive; CPU is the server process's, per request served)`,
      '',
      '| server | median req/s | spread | p99 ms | server CPU µs/req | added over bare, µs/req | non-2xx |',
      '|---|---:|---:|---:|---:|---:|---:|',
      ...rows.map(
        (f) =>
          `| ${f.name} | ${fmt(f.requestsPerSecond)} | ${fmt(f.min)}..${fmt(f.max)} | ${f.p99Ms} | ${f.cpuMicrosPerRequest.toFixed(1)} | ${
            f === bare ? '—' : (f.cpuMicrosPerRequest - bare.cpuMicrosPerRequest).toFixed(1)
          } | ${f.non2xx} |`,
      ),
      '',
    )
  }
  return sections.join('\n')
}
