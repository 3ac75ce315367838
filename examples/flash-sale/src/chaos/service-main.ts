/**
 * The flash-sale service as `pnpm chaos` runs it: a process of its own, which the chaos run
 * SIGKILLs in the middle of claims and starts again. Its settings come as JSON in
 * `CHAOS_SERVICE` (a `ServerConfig` without `onError`). On stdout: `listening <url>` once it
 * serves, and `error <where>: <code>` for each failure the service reports. SIGTERM stops it
 * (requests in flight finish, final usage sync) and it exits 0.
 */
import { exitAfterOutput } from '../cli.js'
import { type ServerConfig, startServer } from '../server.js'

/** What kind of failure the service reported, e.g. `refund: ERR_STORE`. */
function errorKey(error: unknown, where: string): string {
  const place = where.split(' ')[0] ?? where
  const code = (error as { code?: unknown })?.code
  return `${place}: ${typeof code === 'string' ? code : ((error as Error)?.name ?? 'error')}`
}

const config = JSON.parse(process.env.CHAOS_SERVICE ?? '{}') as ServerConfig
const running = await startServer({
  ...config,
  onError: (error, where) => {
    process.stdout.write(`error ${errorKey(error, where)}\n`)
  },
})
process.stdout.write(`listening ${running.url}\n`)
process.once('SIGTERM', () => {
  running.stop().then(
    () => exitAfterOutput(0),
    (error: Error) => {
      console.error(`flash-sale service: stop failed: ${error.message}`)
      exitAfterOutput(1)
    },
  )
})
