import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { redisAnswers as canConnect } from './index.js'

const run = promisify(execFile)

/** True when redis-server and redis-cli are on PATH (tests may then start servers of their own). */
export async function hasRedisServerBinary(): Promise<boolean> {
  try {
    await run('redis-server', ['--version'])
    await run('redis-cli', ['--version'])
    return true
  } catch {
    return false
  }
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** A free loopback port whose cluster bus port (+10000) is free too. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000)
    if ((await portIsFree(port)) && (await portIsFree(port + 10_000))) return port
  }
  throw new Error('no free port found')
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Poll `check` every 50 ms until it holds; throws naming `what` after `timeoutMs`. */
export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs
  while (Date.now() < until) {
    if (await check()) return
    await sleep(50)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** A redis-server this test owns: started on a free loopback port, stopped by PID. */
export interface OwnRedis {
  readonly port: number
  readonly pid: number | undefined
  /** SIGTERM the process (no save) and wait for it to exit. */
  stop(): Promise<void>
  /** SIGKILL the process (a crash) and wait for it to exit. */
  kill(): Promise<void>
  /** Stop it and remove its temp dir. */
  destroy(): Promise<void>
  /** Start it again on the same port; `moreArgs` are added after the first start's arguments. */
  start(moreArgs?: string[]): Promise<void>
  /** SIGSTOP / SIGCONT: the server keeps its sockets but answers nothing. */
  pause(): void
  resume(): void
}

export async function startRedis(extraArgs: string[] = [], port?: number, dir?: string): Promise<OwnRedis> {
  const workDir = dir ?? mkdtempSync(join(tmpdir(), 'andromeda-redis-'))
  const ownPort = port ?? (await freePort())
  let child: ChildProcess | undefined
  const start = async (moreArgs: string[] = []) => {
    child = spawn(
      'redis-server',
      ['--port', String(ownPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', workDir, ...extraArgs, ...moreArgs],
      { stdio: 'ignore' },
    )
    await waitFor(() => canConnect(ownPort), `redis-server on port ${ownPort}`)
  }
  const end = async (signal: 'SIGTERM' | 'SIGKILL') => {
    const proc = child
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill('SIGCONT')
    proc.kill(signal)
    await exited
  }
  const stop = () => end('SIGTERM')
  await start()
  return {
    port: ownPort,
    get pid() {
      return child?.pid
    },
    start,
    stop,
    kill: () => end('SIGKILL'),
    async destroy() {
      await stop()
      if (!dir) rmSync(workDir, { recursive: true, force: true })
    },
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
  }
}
