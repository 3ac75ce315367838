/**
 * What the flash-sale commands (`pnpm demo`, `pnpm chaos`, `pnpm chaos --cluster`) share: strict
 * flags (node:util parseArgs), their checks, the exit codes (0 ok, 1 a check failed, 2 a usage
 * error, 130 interrupted) and Ctrl-C.
 */
import { randomBytes } from 'node:crypto'
import { type ParseArgsConfig, parseArgs } from 'node:util'

/** A flag that is unknown or has a bad value: the command prints it with its help and exits 2. */
export class UsageError extends Error {}

export type FlagOptions = NonNullable<ParseArgsConfig['options']>
export type FlagValues = { [name: string]: string | boolean | undefined }

/** The parseArgs options of flags that take a value (`strings`) and flags that are on or off (`booleans`). */
export function flagOptions(strings: readonly string[], booleans: readonly string[] = []): FlagOptions {
  const options: FlagOptions = {}
  for (const name of strings) options[name] = { type: 'string' }
  for (const name of booleans) options[name] = { type: 'boolean' }
  return options
}

/** The flags in `argv` (pnpm's `--` dropped; `--help` added); undefined when `--help` is given. */
export function readFlags(argv: string[], options: FlagOptions): FlagValues | undefined {
  let values: FlagValues
  try {
    values = parseArgs({
      args: argv.filter((arg) => arg !== '--'),
      options: { ...options, help: { type: 'boolean' } },
      strict: true,
    }).values as FlagValues
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  return values.help === true ? undefined : values
}

/** An integer flag: `fallback` when absent; a `UsageError` unless a safe integer >= `min`. */
export function integerFlag(values: FlagValues, name: string, fallback: number, min: number): number {
  const raw = values[name]
  if (raw === undefined) return fallback
  // Decimal digits only: Number() would read '' as 0 and take 0x10, 1e3 or 0b11.
  const n = typeof raw === 'string' && /^-?\d+$/.test(raw) ? Number(raw) : Number.NaN
  if (!Number.isSafeInteger(n) || n < min)
    throw new UsageError(`--${name} must be an integer >= ${min}, got "${String(raw)}"`)
  return n
}

/** A share between 0 and 1: `fallback` when absent; a `UsageError` otherwise. */
export function ratioFlag(values: FlagValues, name: string, fallback: number): number {
  const raw = values[name]
  const decimal = typeof raw === 'string' && /^\d*\.?\d+$/.test(raw)
  const n = raw === undefined ? fallback : decimal ? Number(raw) : Number.NaN
  if (!(n >= 0 && n <= 1)) throw new UsageError(`--${name} must be between 0 and 1, got "${String(raw)}"`)
  return n
}

/** A string flag, when given. */
export function stringFlag(values: FlagValues, name: string): string | undefined {
  const raw = values[name]
  return typeof raw === 'string' ? raw : undefined
}

/**
 * The command's settings from `argv`, or the code to exit with: 0 after printing the help for
 * `--help`, 2 after printing a usage error and the help.
 */
function settingsOrExitCode<S>(help: string, read: () => S | undefined): S | number {
  try {
    const settings = read()
    if (settings !== undefined) return settings
    console.log(help)
    return 0
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    console.error(`${error.message}\n\n${help}`)
    return 2
  }
}

/** A command run under way: its settings, its Ctrl-C signal and a fresh id for its keys and tables. */
export interface CommandRun<S> {
  settings: S
  interrupted: AbortSignal
  runId: string
}

/**
 * The start every command makes: its settings from its flags (or the exit code, see
 * `settingsOrExitCode`), then Ctrl-C handling (see `interruptSignal`) and a run id.
 */
export function startRun<S>(
  help: string,
  read: () => S | undefined,
  stopping: string,
  forceOnSecond = false,
): CommandRun<S> | number {
  const settings = settingsOrExitCode(help, read)
  if (typeof settings === 'number') return settings
  return { settings, interrupted: interruptSignal(stopping, forceOnSecond), runId: randomBytes(4).toString('hex') }
}

/**
 * Aborted by the first SIGINT or SIGTERM (after printing `${signal}: ${stopping}`), so the
 * command stops its work and cleans up. With `forceOnSecond`, a deliberate second one (more
 * than 500 ms later: a wrapper may relay the same Ctrl-C) exits 130 at once.
 */
function interruptSignal(stopping: string, forceOnSecond = false): AbortSignal {
  const interrupt = new AbortController()
  let interruptedAt = 0
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupt.signal.aborted) {
      if (!forceOnSecond || Date.now() - interruptedAt < 500) return
      console.error('\nforced exit')
      process.exit(130)
    }
    interruptedAt = Date.now()
    console.error(`\n${signal}: ${stopping}`)
    interrupt.abort(new Error(signal))
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return interrupt.signal
}

/**
 * Exit with `code` once stdout and stderr have written all they hold: `process.exit` alone cuts a
 * report short when the output is a pipe (`pnpm demo | tee run.log`), whose writes are async.
 */
export function exitAfterOutput(code: number): void {
  let pending = 2
  const flushed = () => {
    pending -= 1
    if (pending === 0) process.exit(code)
  }
  process.stdout.write('', flushed)
  process.stderr.write('', flushed)
}

/** Run a command's `main` and exit with its code; an unexpected error is printed and exits 1. */
export function runCommand(name: string, main: () => Promise<number>): void {
  main().then(exitAfterOutput, (error: Error) => {
    console.error(`${name} failed: ${error.message}`)
    exitAfterOutput(1)
  })
}

/** A catch handler for a cleanup step at the end of a run: its error becomes one of the run's failures. */
export function cleanupFailed(failures: string[]): (error: Error) => void {
  return (error) => {
    failures.push(`cleanup failed: ${error.message}`)
  }
}

/**
 * The end of a run, printed, and its exit code: 130 when `interrupted` (saying what was
 * stopped), 1 with the failures, 0 with what held. `seed` names the run to repeat it.
 */
export function endOfRun(o: {
  interrupted: boolean
  stopped: string
  failures: string[]
  held: string
  seed?: number
}): number {
  const run = o.seed === undefined ? '' : ` (seed ${o.seed})`
  if (o.interrupted) {
    console.error(`interrupted: ${o.stopped}`)
    return 130
  }
  if (o.failures.length > 0) {
    console.log(`\nFAILED${run}:\n  ${o.failures.join('\n  ')}`)
    return 1
  }
  console.log(`\nok${run}: ${o.held}`)
  return 0
}
