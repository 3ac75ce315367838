import { defineConfig } from 'tsup'
import { tsupBase } from '../../tsup.base.ts'

export default defineConfig({
  ...tsupBase,
  entry: {
    index: 'src/index.ts',
    'http/index': 'src/http/index.ts',
    'http/adapter-exports': 'src/http/adapter-exports.ts',
    'store/index': 'src/store/index.ts',
  },
})
