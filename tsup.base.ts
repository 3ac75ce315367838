import type { Options } from 'tsup'

/** One build shape for every published package: ESM + CJS + .d.ts from src/index.ts. */
export const tsupBase: Options = {
  entry: ['src/index.ts'],
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'node20',
  splitting: false,
  treeshake: true,
}
