import { join } from 'node:path'
import ts from 'typescript'

/**
 * The strictest settings a user's project is likely to have, with Node's own module resolution:
 * each package is seen through its `exports` and its built `.d.ts`, as an installed package is.
 */
export const SNIPPET_COMPILER_OPTIONS: ts.CompilerOptions = {
  strict: true,
  exactOptionalPropertyTypes: true,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2022,
  lib: ['lib.es2023.d.ts'],
  types: ['node'],
  // Third-party declarations are their authors' business; ours are checked by their build.
  skipLibCheck: true,
  noEmitOnError: false,
}

/**
 * Type-check `files` (absolute paths under `srcDir`) as one program and emit JavaScript to
 * `outDir`. Returns each file's diagnostics, formatted.
 */
export function compileSnippets(srcDir: string, outDir: string, files: string[]): Map<string, string[]> {
  const program = ts.createProgram(files, { ...SNIPPET_COMPILER_OPTIONS, rootDir: srcDir, outDir })
  const emitted = program.emit()
  const byFile = new Map<string, string[]>(files.map((file) => [file, []]))
  const diagnostics = [...ts.getPreEmitDiagnostics(program), ...emitted.diagnostics]
  for (const diagnostic of diagnostics) {
    const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')
    const file = diagnostic.file?.fileName
    if (!file || !byFile.has(file)) {
      // A problem outside the snippets (options, a fixture): charge it to every snippet.
      for (const list of byFile.values()) list.push(`TS${diagnostic.code}: ${message}`)
      continue
    }
    const { line, character } = diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start ?? 0)
    byFile.get(file)!.push(`line ${line + 1}:${character + 1} TS${diagnostic.code}: ${message}`)
  }
  return byFile
}

/** Where the JavaScript of `file` lands. */
export function outputOf(srcDir: string, outDir: string, file: string): string {
  return join(outDir, file.slice(srcDir.length + 1).replace(/\.ts$/, '.js'))
}
