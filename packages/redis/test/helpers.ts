import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

import { redisAnswers as canConnect } from '@andromeda/test-utils'

export { IN_CI, SHARED_REDIS, randomPrefix, requireService } from '@andromeda/test-utils'
export { canConnect }

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

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
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
  /** Stop it and remove its temp dir. */
  destroy(): Promise<void>
  /** Start it again on the same port. */
  start(): Promise<void>
  /** SIGSTOP / SIGCONT: the server keeps its sockets but answers nothing. */
  pause(): void
  resume(): void
}

export async function startRedis(extraArgs: string[] = [], port?: number, dir?: string): Promise<OwnRedis> {
  const workDir = dir ?? mkdtempSync(join(tmpdir(), 'andromeda-redis-'))
  const ownPort = port ?? (await freePort())
  let child: ChildProcess | undefined
  const start = async () => {
    child = spawn(
      'redis-server',
      ['--port', String(ownPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', workDir, ...extraArgs],
      { stdio: 'ignore' },
    )
    await waitFor(() => canConnect(ownPort), `redis-server on port ${ownPort}`)
  }
  const stop = async () => {
    const proc = child
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise((resolve) => proc.once('exit', resolve))
    proc.kill('SIGCONT')
    proc.kill('SIGTERM')
    await exited
  }
  await start()
  return {
    port: ownPort,
    get pid() {
      return child?.pid
    },
    start,
    stop,
    async destroy() {
      await stop()
      if (!dir) rmSync(workDir, { recursive: true, force: true })
    },
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
  }
}

/** A local 3-primary Redis Cluster on loopback ports. */
export interface OwnCluster {
  readonly nodes: { host: string; port: number }[]
  stop(): Promise<void>
}

export async function startCluster(): Promise<OwnCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'andromeda-cluster-'))
  const servers: OwnRedis[] = []
  try {
    for (let i = 0; i < 3; i++) {
      const nodeDir = join(dir, `n${i}`)
      await run('mkdir', ['-p', nodeDir])
      servers.push(await startRedis(['--cluster-enabled', 'yes', '--cluster-config-file', join(nodeDir, 'nodes.conf'), '--cluster-node-timeout', '5000'], undefined, nodeDir))
    }
    const addresses = servers.map((s) => `127.0.0.1:${s.port}`)
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'])
    await waitFor(async () => {
      for (const s of servers) {
        const { stdout } = await run('redis-cli', ['-p', String(s.port), 'cluster', 'info'])
        if (!stdout.includes('cluster_state:ok')) return false
      }
      return true
    }, 'cluster_state:ok')
  } catch (error) {
    await Promise.all(servers.map((s) => s.stop()))
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  return {
    nodes: servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
    async stop() {
      await Promise.all(servers.map((s) => s.stop()))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Delete every key under `prefix` through an ioredis client (SCAN + UNLINK, never FLUSH). */
export async function deleteKeys(client: import('ioredis').Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await client.unlink(...keys)
  } while (cursor !== '0')
}
