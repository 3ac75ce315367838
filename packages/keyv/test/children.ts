import { fork } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'tsup'

const here = fileURLToPath(new URL('.', import.meta.url))

/**
 * Child processes run plain Node on this package's source: this bundles test/fixtures/<name>.ts
 * with tsup into one self-contained ESM file `<name>.js` in a temporary directory (workspace
 * packages through their `@andromeda/source` export condition, every dependency inlined,
 * `require` provided for the CommonJS ones), so no build of any package is needed. Returns the
 * directory; the caller removes it.
 */
export async function bundleFixture(name: string): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), 'andromeda-keyv-'))
  await build({
    entry: { [name]: join(here, 'fixtures', `${name}.ts`) },
    outDir,
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    silent: true,
    config: false,
    dts: false,
    noExternal: [/.*/],
    // pg's optional native binding, loaded only on request.
    external: ['pg-native'],
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
    esbuildOptions(options) {
      options.conditions = ['@andromeda/source']
    },
  })
  return outDir
}

/**
 * Fork one child per environment on `<outDir>/<name>.js`, wait until each has sent its first
 * message ("ready"), send each "go" at once, and resolve each child's second message (its
 * tally). A child that exits before reporting fails the run.
 */
export async function runChildren<T>(outDir: string, name: string, envs: Record<string, string>[]): Promise<T[]> {
  const children = envs.map((env) =>
    fork(join(outDir, `${name}.js`), {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  )
  const exited = children.map(
    (child) =>
      new Promise<never>((_, reject) =>
        child.once('exit', (code) => reject(new Error(`a child exited with ${code} before reporting`))),
      ),
  )
  const message = (i: number) =>
    Promise.race([new Promise<unknown>((resolve) => children[i]!.once('message', resolve)), exited[i]!])
  await Promise.all(children.map((_, i) => message(i)))
  const tallies = children.map((_, i) => message(i) as Promise<T>)
  for (const child of children) child.send('go')
  return Promise.all(tallies)
}
