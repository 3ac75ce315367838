import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from '@andromeda/test-utils'
import { Redis } from 'ioredis'

/** A `redis-server` of `pnpm chaos`: no persistence, loopback, its own temp dir; stopped by PID. */
export class OwnedRedis {
  private child: ChildProcess | undefined
  private exited: Promise<void> = Promise.resolve()

  private constructor(
    readonly binary: string,
    readonly port: number,
    readonly dir: string,
  ) {}

  static async create(binary: string): Promise<OwnedRedis> {
    const dir = await mkdtemp(join(tmpdir(), 'andromeda-chaos-'))
    return new OwnedRedis(binary, await freePort(), dir)
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  /** Start it and wait until it answers PING (bounded). */
  async start(): Promise<void> {
    // No RDB, no AOF: a restart loses every counter, the case the service must survive.
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
    args.push('--dir', this.dir, '--daemonize', 'no', '--loglevel', 'warning')
    const child = spawn(this.binary, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr?.on('data', (chunk) => {
      stderr += chunk
    })
    this.child = child
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()))
    const failed = new Promise<never>((_, reject) => {
      child.once('error', (error) => reject(new Error(`cannot start ${this.binary}: ${error.message}`)))
      child.once('exit', (code) => reject(new Error(`${this.binary} exited with ${code}: ${stderr.trim()}`)))
    })
    failed.catch(() => {})
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    probe.on('error', () => {})
    try {
      const deadline = Date.now() + 10_000
      for (;;) {
        const ok = await Promise.race([
          probe.connect().then(
            () => probe.ping().then(() => true),
            () => false,
          ),
          failed,
        ])
        if (ok) return
        if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer within 10 s`)
        probe.disconnect()
        await sleep(50)
      }
    } finally {
      probe.disconnect()
    }
  }

  /** Kill it (SIGKILL: a crash, nothing is saved) and wait until it is gone. */
  async kill(): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    child.kill('SIGKILL')
    await this.exited
  }

  /** Kill it and remove its directory. */
  async dispose(): Promise<void> {
    await this.kill()
    await rm(this.dir, { recursive: true, force: true })
  }
}
