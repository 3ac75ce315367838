import { describe, expect, it } from 'vitest'
import { chaosMissing, runChaos } from './chaos-run.js'

const missing = await chaosMissing('pnpm chaos --cluster', ['redis-server', 'redis-cli'])

describe('pnpm chaos --cluster', () => {
  it.skipIf(missing !== undefined)(
    '--quick fails primaries over (kill, force, manual) while claims flow, and every check holds (exit 0)',
    async () => {
      const run = await runChaos(['--cluster', '--quick'])
      const output = run.stdout + run.stderr
      expect(run.code, output).toBe(0)
      for (const kind of ['kill', 'force', 'manual']) {
        expect(
          new RegExp(`^\\S+\\s+${kind}\\s+n\\d -> n\\d`, 'm').test(run.stdout),
          `a ${kind} failover\n${output}`,
        ).toBe(true)
      }
      expect(run.stdout).toMatch(/^hung\s+0$/m)
      expect(run.stdout).toMatch(/^untyped errors 0$/m)
      expect(run.stdout).toMatch(/^units lost\s+0 /m)
      expect(run.stdout).toContain('no failover lost a unit')
    },
    180_000,
  )

  it('an unknown flag is a usage error with the cluster help text, exit 2', async () => {
    const run = await runChaos(['--cluster', '--bogus'])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('Usage: pnpm chaos --cluster')
  }, 60_000)
})
