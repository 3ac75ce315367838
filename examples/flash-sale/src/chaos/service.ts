import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { ServerConfig } from '../server.js'
import { bump } from '../tools.js'

const MAIN = fileURLToPath(new URL('./service-main.ts', import.meta.url))

/**
 * The flash-sale service in a child process (`service-main.ts`), on a fixed port so clients
 * keep one URL across restarts. `kill()` is a crash (SIGKILL: no final sync, holds left in
 * the store); `stop()` a shutdown (SIGTERM: final sync). Failures the service reports are
 * tallied in `errors`, across restarts.
 */
export class ServiceProcess {
  readonly errors = new Map<string, number>()
  private child: ChildProcess | undefined
  private exited: Promise<unknown> = Promise.resolve()

  constructor(
    private readonly config: ServerConfig & { port: number },
    private readonly startTimeoutMs = 30_000,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.config.port}`
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  /** Start the service and wait until it serves (bounded); rejects when it exits first. */
  async start(): Promise<void> {
    // The same Node flags as this process (the TypeScript loader, the source condition).
    const child = spawn(process.execPath, [...process.execArgv, MAIN], {
      env: { ...process.env, CHAOS_SERVICE: JSON.stringify(this.config) },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    this.child = child
    this.exited = once(child, 'exit').catch(() => {})
    const listening = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the service did not listen within ${this.startTimeoutMs} ms`)),
        this.startTimeoutMs,
      )
      child.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`the service exited before it listened (${signal ?? code})`))
      })
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line.startsWith('listening ')) {
          clearTimeout(timer)
          resolve()
        } else if (line.startsWith('error ')) bump(this.errors, line.slice('error '.length))
      })
    })
    try {
      await listening
    } catch (error) {
      await this.kill()
      throw error
    }
  }

  /** SIGKILL: the process dies at once, in the middle of whatever it was doing. */
  async kill(): Promise<void> {
    if (!this.running) return
    this.child!.kill('SIGKILL')
    await this.exited
  }

  /** SIGSTOP: the process stops where it is (no timer, no reply, no settle) until `thaw()` or a kill. */
  freeze(): void {
    if (this.running) this.child!.kill('SIGSTOP')
  }

  /** SIGCONT: a frozen process goes on. */
  thaw(): void {
    if (this.running) this.child!.kill('SIGCONT')
  }

  /** SIGKILL without waiting: for a parent that is exiting. */
  killNow(): void {
    if (this.running) this.child!.kill('SIGKILL')
  }

  /** SIGTERM: finish requests in flight, run the final usage sync, close; SIGKILL after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.running) return
    const child = this.child!
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    await this.exited
    clearTimeout(timer)
    if (child.exitCode !== 0)
      throw new Error(`the service did not stop cleanly (${child.signalCode ?? child.exitCode})`)
  }
}
