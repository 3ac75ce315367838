import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { openDatabase } from '../src/db.js'

const root = fileURLToPath(new URL('..', import.meta.url))
export const CHAOS_DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'

/**
 * Why `pnpm chaos` cannot run here, or undefined: it starts servers of its own from `binaries`
 * (on PATH) and needs PostgreSQL. Under CI a missing one throws, so the suite never passes by
 * skipping; elsewhere the reason is printed and the caller skips.
 */
export async function chaosMissing(command: string, binaries: string[]): Promise<string | undefined> {
  const missing = await prerequisites(binaries)
  if (missing && process.env.CI === 'true') throw new Error(`${command} cannot run under CI: ${missing}`)
  if (missing) console.warn(`${command} test skipped (set CI=true to require it): ${missing}`)
  return missing
}

async function prerequisites(binaries: string[]): Promise<string | undefined> {
  for (const binary of binaries) {
    const found = spawnSync(binary, ['--version'], { encoding: 'utf8' })
    if (found.error || found.status !== 0)
      return `no ${binary} on PATH (${found.error?.message ?? found.stderr.trim()})`
  }
  try {
    const db = await openDatabase({ url: CHAOS_DATABASE_URL, poolSize: 1 })
    try {
      await db.voucherCodes().catch((error: { code?: string }) => {
        if (error.code !== '42P01') throw error // no table yet is fine: the server answered
      })
    } finally {
      await db.close()
    }
  } catch (error) {
    return `PostgreSQL at ${CHAOS_DATABASE_URL} does not answer: ${(error as Error).message}`
  }
  return undefined
}

/** Run `pnpm chaos` with `args` as a child process; resolves its exit code and output. */
export function runChaos(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(
    process.execPath,
    ['--conditions=@andromeda/source', '--import', 'tsx', 'src/chaos.ts', ...args],
    { cwd: root, env: { ...process.env, DATABASE_URL: CHAOS_DATABASE_URL }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => {
    stdout += chunk
  })
  child.stderr.on('data', (chunk) => {
    stderr += chunk
  })
  return new Promise((resolve) => {
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}
