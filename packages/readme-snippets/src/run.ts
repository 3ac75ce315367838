import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { basename, dirname, join } from 'node:path'

/** What a snippet's process did. */
export interface Ran {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
  /** It did not exit within the time allowed (and was killed). */
  timedOut: boolean
}

function collect(child: ChildProcess) {
  const out = { stdout: '', stderr: '' }
  child.stdout!.on('data', (chunk) => {
    out.stdout += chunk
  })
  child.stderr!.on('data', (chunk) => {
    out.stderr += chunk
  })
  return out
}

async function exited(child: ChildProcess, out: { stdout: string; stderr: string }, timeoutMs: number): Promise<Ran> {
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGKILL')
  }, timeoutMs)
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit')
  clearTimeout(timer)
  return { code: child.exitCode, signal: child.signalCode, ...out, timedOut }
}

/** Run a snippet to its end: it must exit by itself within `timeoutMs`. */
export async function runToExit(file: string, env: Record<string, string>, timeoutMs: number): Promise<Ran> {
  const child = spawn(process.execPath, [file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  return exited(child, collect(child), timeoutMs)
}

/**
 * Start a server snippet on `port`, send one request (with its headers and JSON body, if any)
 * once it answers, then SIGTERM it: it must close what it opened and exit by itself within `timeoutMs`.
 */
export async function runServer(
  file: string,
  env: Record<string, string>,
  port: number,
  request: { method: string; path: string; headers?: Record<string, string>; body?: unknown },
  timeoutMs: number,
): Promise<Ran & { status: number | undefined }> {
  const child = spawn(process.execPath, [file], {
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const out = collect(child)
  let status: number | undefined
  const until = Date.now() + timeoutMs
  while (status === undefined && child.exitCode === null && Date.now() < until) {
    try {
      const json: Record<string, string> = request.body === undefined ? {} : { 'content-type': 'application/json' }
      const response = await fetch(`http://127.0.0.1:${port}${request.path}`, {
        method: request.method,
        headers: { ...json, ...request.headers },
        ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
        signal: AbortSignal.timeout(2000),
      })
      await response.arrayBuffer()
      status = response.status
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  child.kill('SIGTERM')
  return { ...(await exited(child, out, timeoutMs)), status }
}

/**
 * Run a test-file snippet with vitest (the copy this package depends on), under a config of
 * its own so no config of the workspace around it applies; it must pass.
 */
export async function runVitest(file: string, env: Record<string, string>, timeoutMs: number): Promise<Ran> {
  const vitest = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs')
  const config = join(dirname(file), 'vitest.config.mjs')
  writeFileSync(
    config,
    `export default { test: { include: [${JSON.stringify(basename(file))}], testTimeout: 60000 } }\n`,
  )
  const child = spawn(process.execPath, [vitest, 'run', '--config', config, '--root', dirname(file)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return exited(child, collect(child), timeoutMs)
}
