import { describe, expect, it } from 'vitest'
import { chaosMissing, runChaos } from './chaos-run.js'

const missing = await chaosMissing('pnpm chaos', ['redis-server'])

describe('pnpm chaos', () => {
  it.skipIf(missing !== undefined).each([
    { flags: ['--quick'], batching: 'on' },
    { flags: ['--quick', '--no-batch'], batching: 'off' },
  ])(
    '$flags.0 (Redis store batching $batching) kills the service in the middle of claims, injects every Redis fault, and every check holds (exit 0)',
    async ({ flags, batching }) => {
      const run = await runChaos(flags)
      const output = run.stdout + run.stderr
      expect(run.code, output).toBe(0)
      expect(run.stdout).toContain(`batching ${batching}`)
      for (const kind of ['service-kill', 'redis-restart', 'script-flush', 'client-pause', 'client-kill']) {
        const count = Number(new RegExp(`^${kind}\\s+(\\d+)\\s`, 'm').exec(run.stdout)?.[1])
        expect(count, `${kind} faults injected\n${output}`).toBeGreaterThan(0)
      }
      // The service died holding units, and after the hold time none is held any more.
      const held = Number(
        /^service kills\s+\d+: \d+ requests in flight, (\d+) voucher units held/m.exec(run.stdout)?.[1],
      )
      expect(held, output).toBeGreaterThan(0)
      expect(run.stdout).toMatch(/^holds left\s+0 voucher units/m)
      expect(run.stdout).toMatch(/^hung\s+0$/m)
      expect(run.stdout).toMatch(/^untyped errors 0$/m)
      expect(run.stdout).toContain('ok (seed ')
    },
    120_000,
  )

  it('an unknown flag is a usage error with the help text, exit 2', async () => {
    const run = await runChaos(['--bogus'])
    expect(run.code).toBe(2)
    expect(run.stderr).toContain('Usage: pnpm chaos')
  }, 60_000)
})
