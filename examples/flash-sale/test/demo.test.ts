import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('..', import.meta.url))

const DEMO = [process.execPath, '--conditions=@andromeda/source', '--import', 'tsx', 'src/demo.ts']

/**
 * Run the demo as a user does (its own process); optionally send it a signal once the load has
 * begun. `slowReader`: its stdout goes through a pipe that is read only after a second
 * (`demo | (sleep 1; cat)`), so the pipe is full when the demo ends; the exit code is the demo's.
 */
function runDemo(args: string[], interruptAfterMs?: number, slowReader = false) {
  const pipeline = `"$@" | (sleep 1; cat); exit \${PIPESTATUS[0]}`
  const [command, ...argv] = slowReader ? ['bash', '-c', pipeline, 'demo', ...DEMO, ...args] : [...DEMO, ...args]
  const child = spawn(command!, argv, {
    cwd: root,
    env: { ...process.env, REDIS_URL: '', DATABASE_URL: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => {
    stdout += chunk
    if (interruptAfterMs !== undefined && stdout.includes('service on http://')) {
      interruptAfterMs = undefined
      setTimeout(() => child.kill('SIGINT'), 1000)
    }
  })
  child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) => {
      child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
    },
  )
}

describe('pnpm demo', () => {
  it('prints a table where granted, claim rows, synced usage and counter equal the limit, and exits 0', async () => {
    const run = await runDemo([
      '--claims',
      '400',
      '--users',
      '300',
      '--vouchers',
      '2',
      '--limit',
      '20',
      '--concurrency',
      '50',
    ])
    expect(run.code, run.stdout + run.stderr).toBe(0)
    expect(run.stdout).toMatch(/FLASH-1\s+20\s+20\s+20\s+20\s+20\s+ok/)
    expect(run.stdout).toMatch(/FLASH-2\s+20\s+20\s+20\s+20\s+20\s+ok/)
    expect(run.stdout).toMatch(/latency\s+p50 .* p95 .* p99 /)
    expect(run.stdout).toContain('errors        0')
  }, 120_000)

  it('a report larger than a pipe buffer reaches a piped stdout whole, its verdict last', async () => {
    // 2,000 table rows: far more than one pipe buffer, so an exit that does not wait for the
    // slow reader cuts the report short.
    const run = await runDemo(['--claims', '10', '--vouchers', '2000', '--limit', '1'], undefined, true)
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/FLASH-2000\s/)
    expect(run.stdout.trimEnd().split('\n').at(-1)).toMatch(/^ok: no voucher oversold/)
  }, 120_000)

  it('Ctrl-C during the load stops the server and the sync (final flush) and exits 130 without a stack trace', async () => {
    const run = await runDemo(['--claims', '1000000', '--users', '500000', '--concurrency', '20'], 1000)
    expect(run.signal).toBeNull()
    expect(run.code, run.stdout + run.stderr).toBe(130)
    expect(run.stderr).toContain('SIGINT: stopping the load, the server and the sync (final flush)')
    expect(run.stderr).toContain(
      'interrupted: load stopped, server closed, usage synced (final flush), connections closed.',
    )
    expect(run.stdout + run.stderr).not.toMatch(/^\s+at /m)
  }, 120_000)

  it('an unknown flag is a usage error with the help text, exit 2', async () => {
    const run = await runDemo(['--bogus'])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('Usage: pnpm demo')
  }, 60_000)
})
