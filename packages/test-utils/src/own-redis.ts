import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
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

/** Offset of a Redis Cluster node's bus port from its client port. */
const CLUSTER_BUS_OFFSET = 10_000
const LOWEST_PORT = 10_000

/** The first port the kernel hands out as the source port of an outgoing connection (Linux). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
    return Number.isInteger(low) && low > LOWEST_PORT + CLUSTER_BUS_OFFSET ? low : 32_768
  } catch {
    return 32_768
  }
}

/**
 * A free loopback port whose cluster bus port (+10000) is free too, both below the ephemeral
 * range: no outgoing connection of any process can take one while a server is down between a
 * kill and its restart on the same port.
 */
export async function freePort(): Promise<number> {
  const span = ephemeralLow() - CLUSTER_BUS_OFFSET - LOWEST_PORT
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = LOWEST_PORT + Math.floor(Math.random() * span)
    if ((await portIsFree(port)) && (await portIsFree(port + CLUSTER_BUS_OFFSET))) return port
  }
  throw new Error('no free port found')
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A connection that failed or timed out: the server is down or busy for now, not a wrong answer. */
function isTransportError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true
  return error instanceof Error && /^no reply from port /.test(error.message)
}

/**
 * Poll `check` every 50 ms until it holds; throws naming `what` after `timeoutMs`. A check that
 * fails to reach a server (refused, reset, timed out: a node being killed or promoted) counts as
 * "not yet"; any other error it throws ends the wait at once.
 */
export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < until) {
    try {
      if (await check()) return
    } catch (error) {
      if (!isTransportError(error)) throw error
      lastError = error
    }
    await sleep(50)
  }
  const cause = lastError instanceof Error ? ` (last: ${lastError.message})` : ''
  throw new Error(`timed out waiting for ${what}${cause}`)
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

/** The PID of the redis-server answering on `port` (INFO server's process_id). */
async function pidOn(port: number): Promise<number | undefined> {
  try {
    const { stdout } = await run('redis-cli', ['-p', String(port), 'INFO', 'server'], { timeout: 5000 })
    const match = /^process_id:(\d+)/m.exec(stdout)
    return match ? Number(match[1]) : undefined
  } catch {
    return undefined
  }
}

/** The flags of a throwaway server: loopback only, no persistence, in the foreground, files in `dir`. */
function serverArgs(port: number, dir: string): string[] {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  return [...args, '--daemonize', 'no', '--dir', dir]
}

/** Spawn `redis-server` (told to `spawned` at once) and wait until the server answering on `port` is that process. */
async function spawnRedis(port: number, args: string[], spawned: (proc: ChildProcess) => void): Promise<void> {
  const proc = spawn('redis-server', args, { stdio: 'ignore' })
  spawned(proc)
  const gone = () => proc.exitCode !== null || proc.signalCode !== null
  await waitFor(async () => {
    if (gone()) throw new Error(`redis-server on port ${port} exited (code ${proc.exitCode}) before it answered`)
    return (await canConnect(port)) && (await pidOn(port)) === proc.pid
  }, `redis-server (pid ${proc.pid}) on port ${port}`)
}

/**
 * Start `redis-server` and wait until it answers: ours, not another process's server on the
 * same port (a port picked free can be taken before the server binds it). On a port of its
 * own choosing it tries another port when the server could not bind; on a given port it fails.
 */
export async function startRedis(extraArgs: string[] = [], port?: number, dir?: string): Promise<OwnRedis> {
  const workDir = dir ?? mkdtempSync(join(tmpdir(), 'andromeda-redis-'))
  let ownPort = port ?? (await freePort())
  let child: ChildProcess | undefined
  const launch = async (moreArgs: string[]) => {
    await spawnRedis(ownPort, [...serverArgs(ownPort, workDir), ...extraArgs, ...moreArgs], (proc) => {
      child = proc
    })
  }
  // A restart keeps the port (clients of the test know it); only the first start may move.
  const start = (moreArgs: string[] = []) => launch(moreArgs)
  for (let attempt = 1; ; attempt++) {
    try {
      await launch([])
      break
    } catch (error) {
      // Never leave a server behind that did not become ours.
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      if (port !== undefined || attempt === 3) throw error
      ownPort = await freePort()
    }
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
