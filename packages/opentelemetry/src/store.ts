import { type CounterOp, type CounterStore, wrapStore } from '@andromeda/core'
import { ATTR, type QuotaInstruments } from './instruments.js'

/**
 * The quota name a key belongs to. Every key the engine builds starts with the hash-tag group
 * `{<name>:<id>}`, the name percent-encoded for `%`, `{`, `}` and `:` (see `hashTagGroup` in `@andromeda/core/store`):
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
    const attributes: Record<string, string> = {
      [ATTR.quota]: key === undefined ? 'unknown' : quotaNameOfKey(key),
      [ATTR.storeOperation]: OPERATION[method],
    }
    if (error !== undefined) {
      const code = (error as { code?: unknown } | null)?.code
      attributes[ATTR.errorType] = typeof code === 'string' ? code : error instanceof Error ? error.name : 'unknown'
    }
    instruments.storeDuration.record((performance.now() - startedAt) / 1000, attributes)
  }
  const keyOf = (method: Method, args: unknown[]) =>
    method === 'apply' ? (args[0] as readonly CounterOp[])[0]?.key : (args[0] as string | undefined)
  const wrapper = wrapStore(store, {
    call: (method, args, invoke) => {
      if (method === 'close') return invoke()
      const key = keyOf(method, args)
      const startedAt = performance.now()
      let answer: unknown
      try {
        answer = invoke()
      } catch (error) {
        record(method, key, startedAt, error)
        throw error
      }
      // A store that answers synchronously (the memory store's apply) still does so here.
      if (typeof (answer as PromiseLike<unknown> | null)?.then !== 'function') {
        record(method, key, startedAt)
        return answer
      }
      return Promise.resolve(answer).then(
        (value) => {
          record(method, key, startedAt)
          return value
        },
        (error: unknown) => {
          record(method, key, startedAt, error)
          throw error
        },
      )
    },
  })
  wrappers.set(instruments, wrapper)
  return wrapper
}
