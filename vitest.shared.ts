import { defineConfig } from 'vitest/config'

/**
 * Shared test config: tests import every workspace package from its TypeScript source
 * (the `@andromeda/source` export condition), so no build is needed before `pnpm test`.
 */
export default defineConfig({
  ssr: { resolve: { conditions: ['@andromeda/source'] } },
  resolve: { conditions: ['@andromeda/source'] },
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
})
