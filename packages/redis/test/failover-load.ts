import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { counterKey } from '@andromeda/core'
import { adminCommand, type FailoverTiming } from '@andromeda/test-utils'
import { bundleFixture } from './bundle-fixture.js'
import type { RoundReport } from './fixtures/failover-consumer.js'

/**
 * Load from several processes while a test fails primaries over, and the accounting of each
 * round: what the processes were told (granted, failed) against the usage the new primaries hold.
 */

/** The bundled child-process fixture (see `bundle-fixture.ts`), built before the tests run. */
let fixture = ''
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export async function buildConsumer(): Promise<void> {
  fixture = await bundleFixture('failover-consumer')
}

/** One child process and the lines it printed. */
class Consumer {
  private lines: string[] = []
  private waiters: (() => void)[] = []
  private exited: Promise<number | null>

  constructor(
    readonly client: string,
    private readonly child: ChildProcessWithoutNullStreams,
  ) {
    let buffered = ''
    child.stdout.on('data', (chunk) => {
      buffered += chunk
      const parts = buffered.split('\n')
      buffered = parts.pop() ?? ''
      this.lines.push(...parts)
      for (const wake of this.waiters.splice(0)) wake()
    })
    this.exited = new Promise((resolve) => child.once('exit', resolve))
    child.stderr.on('data', (chunk) => process.stderr.write(`[${client}] ${chunk}`))
  }

  send(line: string): void {
    this.child.stdin.write(`${line}\n`)
  }

  async next(timeoutMs = 30_000): Promise<string> {
    const until = Date.now() + timeoutMs
    while (this.lines.length === 0) {
      if (Date.now() > until) throw new Error(`${this.client}: no output within ${timeoutMs} ms`)
      await Promise.race([new Promise<void>((resolve) => this.waiters.push(resolve)), sleep(100), this.exited])
      if (this.child.exitCode !== null && this.lines.length === 0)
        throw new Error(`${this.client} exited with ${this.child.exitCode}`)
    }
    return this.lines.shift()!
  }

  async exit(): Promise<void> {
    if (this.child.exitCode === null) this.send('exit')
    const code = await Promise.race([this.exited, sleep(10_000).then(() => 'timeout' as const)])
    if (code === 'timeout') this.child.kill('SIGKILL')
  }
}

export interface LoadSetup {
  /** One entry per process: its client kind (see the fixture). */
  clients: string[]
  seeds: { host: string; port: number }[]
  sentinelName?: string
  prefix: string
  replicas?: { count: number; timeoutMs: number }
  /** Concurrent consumes per process (default 4). */
  workers?: number
  /** The stores' `commandTimeoutMs`. */
  commandTimeoutMs: number
}

/** What one round measured. */
export interface RoundResult {
  timing: FailoverTiming
  calls: number
  /** Units reported granted, over every process and id. */
  granted: number
  /** Units the primaries hold after the round. */
  usage: number
  /** Units granted but missing from the new primary: sold twice once the quota fills up. */
  lost: number
  /** Units counted by calls that were reported as failed (not retryable: they may have been applied). */
  leftCounted: number
  failedRetryable: number
  failedNotRetryable: number
  untyped: string[]
  slowestFailureMs: number
  /** From the promotion to the last failed call of any process (ms; 0 when none failed after it). */
  recoveryMs: number
  /** Per id: usage <= granted + failed-not-retryable, i.e. no retryable failure was applied. */
  retryableApplied: string[]
  afterMark: (RoundReport['afterMark'] & { client: string })[]
}

export class FailoverLoad {
  private constructor(
    private readonly consumers: Consumer[],
    private readonly prefix: string,
  ) {}

  static async start(setup: LoadSetup): Promise<FailoverLoad> {
    const consumers = setup.clients.map(
      (client) =>
        new Consumer(
          client,
          spawn(process.execPath, [fixture], {
            env: {
              ...process.env,
              CLIENT: client,
              SEEDS: JSON.stringify(setup.seeds),
              SENTINEL_NAME: setup.sentinelName ?? '',
              PREFIX: setup.prefix,
              REPLICAS: setup.replicas ? `${setup.replicas.count},${setup.replicas.timeoutMs}` : '',
              WORKERS: String(setup.workers ?? 4),
              COMMAND_TIMEOUT_MS: String(setup.commandTimeoutMs),
            },
            stdio: ['pipe', 'pipe', 'pipe'],
          }),
        ),
    )
    const load = new FailoverLoad(consumers, setup.prefix)
    try {
      for (const consumer of consumers) {
        const line = await consumer.next()
        if (line !== 'ready') throw new Error(`${consumer.client}: expected "ready", got ${line}`)
      }
    } catch (error) {
      await load.stop()
      throw error
    }
    return load
  }

  /**
   * Consume on fresh ids from every process; after `leadMs`, run `failover`; when it is done
   * (healthy again) wait `settleMs`, then count the calls started in the next `afterMs` apart
   * (make it longer than the stores' bound: a call sent to a dead primary just before the
   * slot map changed holds its worker that long), and stop.
   * `primaryPorts` says where to read the usage afterwards.
   */
  async round(
    failover: () => Promise<FailoverTiming>,
    primaryPorts: () => Promise<number[]>,
    { ids = 20, leadMs = 500, settleMs = 300, afterMs = 1300 } = {},
  ): Promise<RoundResult> {
    const quota = `failover-${randomBytes(4).toString('hex')}`
    const idList = Array.from({ length: ids }, (_, i) => `id${i}`)
    for (const c of this.consumers) c.send(`start ${quota} ${idList.join(',')}`)
    await sleep(leadMs)
    const startedAt = Date.now()
    const timing = await failover()
    const promotedAt = startedAt + timing.promotedMs
    await sleep(settleMs)
    for (const c of this.consumers) c.send('mark')
    await sleep(afterMs)
    for (const c of this.consumers) c.send('stop')
    const reports = await Promise.all(this.consumers.map(async (c) => JSON.parse(await c.next()) as RoundReport))

    const ports = await primaryPorts()
    const sum = (pick: (r: RoundReport) => Record<string, number>, id: string) =>
      reports.reduce((n, r) => n + (pick(r)[id] ?? 0), 0)
    let granted = 0
    let usage = 0
    let lost = 0
    let leftCounted = 0
    const retryableApplied: string[] = []
    for (const id of idList) {
      const mine = sum((r) => r.granted, id)
      const notRetryable = sum((r) => r.failedNotRetryable, id)
      const held = await usageOn(ports, this.prefix + counterKey(quota, id))
      granted += mine
      usage += held
      lost += Math.max(0, mine - held)
      leftCounted += Math.max(0, held - mine)
      if (held > mine + notRetryable)
        retryableApplied.push(`${id}: usage ${held} > granted ${mine} + failed not retryable ${notRetryable}`)
    }
    const lastFailureAt = Math.max(0, ...reports.map((r) => r.lastFailureAt ?? 0))
    return {
      timing,
      calls: reports.reduce((n, r) => n + r.calls, 0),
      granted,
      usage,
      lost,
      leftCounted,
      failedRetryable: reports.reduce((n, r) => n + Object.values(r.failedRetryable).reduce((a, b) => a + b, 0), 0),
      failedNotRetryable: reports.reduce(
        (n, r) => n + Object.values(r.failedNotRetryable).reduce((a, b) => a + b, 0),
        0,
      ),
      untyped: reports.flatMap((r) => r.untyped),
      slowestFailureMs: Math.max(0, ...reports.map((r) => r.slowestFailureMs)),
      recoveryMs: Math.max(0, lastFailureAt - promotedAt),
      retryableApplied,
      afterMark: reports.map((r, i) => ({ ...r.afterMark, client: this.consumers[i]!.client })),
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.consumers.map((c) => c.exit()))
  }
}

/** A counter's value on whichever of `ports` holds its slot (the others answer MOVED); 0 when absent. */
async function usageOn(ports: number[], key: string): Promise<number> {
  for (const port of ports) {
    const value = await adminCommand(port, ['GET', key]).catch(() => undefined)
    if (value !== undefined) return Number(value ?? 0)
  }
  throw new Error(`no primary answered for ${key}`)
}

/** The rounds as a text table, for the test's output (the README's figures come from it). */
export function roundsTable(title: string, rounds: RoundResult[]): string {
  const header = [
    'round',
    'failover',
    'promoted ms',
    'calls',
    'granted',
    'failed r/nr',
    'lost',
    'left counted',
    'slowest fail ms',
    'recovery ms',
  ]
  const rows = rounds.map((r, i) => [
    String(i + 1),
    `${r.timing.kind} ${r.timing.from}->${r.timing.to}`,
    r.timing.promotedMs.toFixed(0),
    String(r.calls),
    String(r.granted),
    `${r.failedRetryable}/${r.failedNotRetryable}`,
    String(r.lost),
    String(r.leftCounted),
    r.slowestFailureMs.toFixed(0),
    r.recoveryMs.toFixed(0),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padStart(widths[i]!)).join('  ')
  return [title, line(header), ...rows.map(line)].join('\n')
}
