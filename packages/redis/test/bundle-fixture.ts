import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'tsup'

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..')
// Inside the package's node_modules, so a bundle resolves the Redis clients as the package does.
const outDir = join(packageDir, 'node_modules', '.cache', 'andromeda-redis-test')

/**
 * Bundle `test/fixtures/<name>.ts` (the workspace's sources, the Redis clients left to the
 * package's node_modules) for a child process; resolves the path of the `.mjs` to run.
 */
export async function bundleFixture(name: string): Promise<string> {
  await build({
    config: false,
    entry: { [name]: join(packageDir, 'test', 'fixtures', `${name}.ts`) },
    outDir,
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    outExtension: () => ({ js: '.mjs' }),
    dts: false,
    clean: false,
    silent: true,
    external: ['ioredis', 'redis', 'redis6'],
    noExternal: [/^@andromeda\//, 'lru-cache', 'cluster-key-slot'],
    esbuildOptions(options) {
      options.conditions = ['@andromeda/source']
    },
  })
  return join(outDir, `${name}.mjs`)
}
