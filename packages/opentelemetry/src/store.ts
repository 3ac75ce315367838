import type { ApplyOptions, ApplyResult, CounterOp, CounterStore } from '@andromeda/core'
import { ATTR, type QuotaInstruments } from './instruments.js'

/**
 * The quota name a key belongs to. Every key the engine builds starts with the hash-tag group
 * `{<name>:<id>}`, the name percent-encoded for `%`, `{`, `}` and `:` (see core's `keyGroup`):
 * the name is what lies between `{` and the first `:`. The id is never read.
 */
export function quotaNameOfKey(key: string): string {
  const open = key.indexOf('{')
  const colon = key.indexOf(':', open + 1)
  if (open !== 0 || colon === -1) return 'unknown'
  try {
    return decodeURIComponent(key.slice(1, colon))
  } catch {
    return 'unknown'
  }
}

const byStore = new WeakMap<CounterStore, WeakMap<QuotaInstruments, CounterStore>>()

type Method = 'apply' | 'seed' | 'get' | 'set' | 'delete' | 'acquireLock' | 'releaseLock'

/** Snake case, as OpenTelemetry attribute values usually are. */
const OPERATION: Record<Method, string> = {
  apply: 'apply',
  seed: 'seed',
  get: 'get',
  set: 'set',
  delete: 'delete',
  acquireLock: 'acquire_lock',
  releaseLock: 'release_lock',
}

/**
 * `store`, with the duration of every call recorded to `instruments.storeDuration`, labelled by
 * the quota the call's (first) key belongs to and the store method; a failed call adds
 * `error.type`. One wrapper per store and set of instruments, so quotas sharing a store still
 * share it (`consumeAll` keeps its one atomic call). A store whose `apply` answers
 * synchronously (memory) still does so through the wrapper; `close` is kept when the store has it.
 */
export function instrumentStore(store: CounterStore, instruments: QuotaInstruments): CounterStore {
  let wrappers = byStore.get(store)
  if (!wrappers) {
    wrappers = new WeakMap()
    byStore.set(store, wrappers)
  }
  const existing = wrappers.get(instruments)
  if (existing) return existing

  const record = (method: Method, key: string | undefined, startedAt: number, error?: unknown) => {
    const attributes: Record<string, string> = { [ATTR.quota]: key === undefined ? 'unknown' : quotaNameOfKey(key), [ATTR.storeOperation]: OPERATION[method] }
    if (error !== undefined) {
      const code = (error as { code?: unknown } | null)?.code
      attributes[ATTR.errorType] = typeof code === 'string' ? code : error instanceof Error ? error.name : 'unknown'
    }
    instruments.storeDuration.record((performance.now() - startedAt) / 1000, attributes)
  }
  const timed =
    <A extends unknown[], R>(method: Method, keyOf: (first: NoInfer<A>[0]) => string | undefined, call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const startedAt = performance.now()
      try {
        const value = await call(...args)
        record(method, keyOf(args[0]), startedAt)
        return value
      } catch (error) {
        record(method, keyOf(args[0]), startedAt, error)
        throw error
      }
    }
  const firstKey = (ops: readonly CounterOp[]) => ops[0]?.key
  const byKey = (key: string) => key

  const wrapper: CounterStore = {
    capabilities: store.capabilities,
    apply: (ops: readonly CounterOp[], options?: ApplyOptions): ApplyResult | Promise<ApplyResult> => {
      const startedAt = performance.now()
      let answer: ApplyResult | Promise<ApplyResult>
      try {
        answer = store.apply(ops, options)
      } catch (error) {
        record('apply', firstKey(ops), startedAt, error)
        throw error
      }
      if (typeof (answer as Promise<ApplyResult>).then !== 'function') {
        record('apply', firstKey(ops), startedAt)
        return answer
      }
      return Promise.resolve(answer).then(
        (value) => {
          record('apply', firstKey(ops), startedAt)
          return value
        },
        (error: unknown) => {
          record('apply', firstKey(ops), startedAt, error)
          throw error
        },
      )
    },
    seed: timed('seed', byKey, (key: string, value: number, ttlMs?: number) => store.seed(key, value, ttlMs)),
    get: timed('get', byKey, (key: string) => store.get(key)),
    set: timed('set', byKey, (key: string, value: number, ttlMs?: number) => store.set(key, value, ttlMs)),
    delete: timed('delete', byKey, (key: string) => store.delete(key)),
    acquireLock: timed('acquireLock', byKey, (key: string, token: string, ttlMs: number) => store.acquireLock(key, token, ttlMs)),
    releaseLock: timed('releaseLock', byKey, (key: string, token: string) => store.releaseLock(key, token)),
  }
  if (store.close) wrapper.close = () => store.close!()
  wrappers.set(instruments, wrapper)
  return wrapper
}
