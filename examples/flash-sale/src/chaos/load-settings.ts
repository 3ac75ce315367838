import { randomBytes } from 'node:crypto'
import { type FlagOptions, type FlagValues, flagOptions, integerFlag, ratioFlag, stringFlag } from '../cli.js'

/** The flags both chaos commands take: the load's size and shape, its seed, the database. */
export const LOAD_FLAGS: FlagOptions = flagOptions(
  [
    'duration',
    'requests',
    'seed',
    'vouchers',
    'limit',
    'users',
    'concurrency',
    'unclaim-ratio',
    'timeout-ms',
    'database-url',
  ],
  ['quick'],
)

/** The help lines of `LOAD_FLAGS` (but `--quick`), for a command that injects `what` and sends `requests` by default. */
export function loadFlagsHelp(what: string, requests: number): string {
  return `  --duration S       seconds of load and ${what} (default 60)
  --requests N       most requests to send, paced over the duration (default ${requests})
  --seed N           seed of the ${what} schedule and of the claims (default: random, printed)
  --vouchers N       vouchers on sale (default 3)
  --limit N          units per voucher (default 100)
  --users N          distinct users (default 1500)
  --concurrency N    requests in flight (default 48)
  --unclaim-ratio P  share of requests that unclaim a held voucher, 0..1 (default 0.2)
  --timeout-ms N     client-side bound of one request (default 10000)
  --database-url URL default: DATABASE_URL, else postgres://postgres@127.0.0.1:5432/test
`
}

/** What `LOAD_FLAGS` set. */
export interface LoadSettings {
  durationMs: number
  requests: number
  seed: number
  vouchers: number
  limit: number
  users: number
  concurrency: number
  unclaimRatio: number
  /** Client-side bound of one request (ms). */
  timeoutMs: number
  databaseUrl: string
}

/** The load settings from the flags; `--quick` is the CI size, and each command has its own request count. */
export function loadSettings(values: FlagValues, requests: { quick: number; full: number }): LoadSettings {
  const quick = values.quick === true
  return {
    durationMs: integerFlag(values, 'duration', quick ? 20 : 60, 5) * 1000,
    requests: integerFlag(values, 'requests', quick ? requests.quick : requests.full, 1),
    seed: integerFlag(values, 'seed', randomBytes(4).readUInt32BE() % 1_000_000, 0),
    vouchers: integerFlag(values, 'vouchers', quick ? 2 : 3, 1),
    limit: integerFlag(values, 'limit', quick ? 40 : 100, 1),
    users: integerFlag(values, 'users', quick ? 600 : 1500, 1),
    concurrency: integerFlag(values, 'concurrency', quick ? 32 : 48, 1),
    unclaimRatio: ratioFlag(values, 'unclaim-ratio', 0.2),
    timeoutMs: integerFlag(values, 'timeout-ms', 10_000, 100),
    databaseUrl:
      stringFlag(values, 'database-url') ?? (process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test'),
  }
}
