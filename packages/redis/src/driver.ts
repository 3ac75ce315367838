import { NoReplyError, NotSentError } from './errors.js'
import type { ReplicasOptions } from './replicas.js'

/**
 * What the store asks of a client library (ioredis-driver.ts, node-redis-driver.ts): send EVALSHA
 * / EVAL routed by the first key, read each primary's clock, and tell whether a failed command
 * surely never reached the server.
 */
export interface Driver {
  readonly library: 'ioredis' | 'node-redis'
  readonly cluster: boolean
  /** The client's own key prefix (ioredis `keyPrefix`), added to every key by the client. */
  readonly clientKeyPrefix: string
  /**
   * True when the client keeps a command it has not written yet in a queue of its own, from
   * which an `AbortSignal` withdraws it (node-redis): the store then hands every command a
   * signal that fires at its deadline. ioredis takes no signal; the store sends to it only
   * while it is ready.
   */
  readonly withdraws: boolean
  /**
   * False when WAIT cannot be sent on the connection of a script call's node (an ioredis
   * Cluster whose nodes this driver cannot reach): the `replicas` option is then refused.
   */
  readonly waits: boolean
  /** True when a command may be sent now (a cheap check, made on every call). */
  isReady(): boolean
  /** Resolve when a command may be sent; reject with NotSentError when `waitMs` passes first. */
  ready(waitMs: number, signal?: AbortSignal): Promise<void>
  /**
   * EVALSHA routed by the first key. `keysAndArgs` holds the `numKeys` keys, then the
   * arguments; it is handed to the client as it is (no copy). `abort`: see `withdraws`.
   * With `replicas`, `WAIT` goes right behind it on the same connection and the answer is an
   * `Acknowledged` (see `replicas.ts`).
   */
  evalsha(
    sha: string,
    numKeys: number,
    keysAndArgs: string[],
    abort?: AbortSignal,
    replicas?: ReplicasOptions,
  ): Promise<unknown>
  /** EVAL routed by the first key (loads the script on that node as a side effect); `replicas` as for `evalsha`. */
  eval(
    lua: string,
    numKeys: number,
    keysAndArgs: string[],
    abort?: AbortSignal,
    replicas?: ReplicasOptions,
  ): Promise<unknown>
  /**
   * For each primary that answers: its clock minus ours (`performance.now()`, which no wall
   * clock step moves) at the moment its answer arrived (ms).
   */
  clockOffsets(abort: AbortSignal): Promise<number[]>
  /** True when `error` proves the command never reached the server. */
  notSent(error: unknown): boolean
  /** Detach every listener this driver added to the client. */
  dispose(): void
}

function timeToMs(reply: unknown): number {
  if (!Array.isArray(reply) || reply.length < 2) throw new Error(`unexpected TIME reply: ${String(reply)}`)
  return Number(reply[0]) * 1000 + Math.floor(Number(reply[1]) / 1000)
}

/** Resolve the offsets that answered; reject only if none did. */
async function offsetsOf(probes: Promise<number>[]): Promise<number[]> {
  const settled = await Promise.allSettled(probes)
  const offsets = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  if (offsets.length === 0) {
    const first = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
    throw first?.reason ?? new Error('no Redis primary answered TIME')
  }
  return offsets
}

/** Used by the clock calibration only: the store's deadline queue bounds the script calls. */
function raceAbort<T>(promise: Promise<T>, abort: AbortSignal): Promise<T> {
  if (abort.aborted) return Promise.reject(new NotSentError('deadline passed before sending'))
  return new Promise<T>((resolve, reject) => {
    // Deferred one turn: node-redis rejects a command still in its queue on the same abort
    // (AbortError, proof it was never written), and that answer must win over ours.
    const onAbort = () => setImmediate(() => reject(new NoReplyError('no reply before the deadline')))
    abort.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        abort.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error) => {
        abort.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

/** `Driver.clockOffsets` from one TIME per primary: each answer's clock minus ours when it arrived. */
export function clockOffsetsOf(times: (() => Promise<unknown>)[], abort: AbortSignal): Promise<number[]> {
  return offsetsOf(times.map((time) => raceAbort(time(), abort).then((reply) => timeToMs(reply) - performance.now())))
}
