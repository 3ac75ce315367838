import { type CounterStore, StoreError } from '@andromeda/core'
import { createMemoryStore } from '@andromeda/memory'

/** A memory store whose every call fails as an unreachable backend would (test-only). */
export function downStore(): CounterStore {
  const inner = createMemoryStore()
  const fail = async (): Promise<never> => {
    throw new StoreError('connection refused', { retryable: true })
  }
  return {
    capabilities: inner.capabilities,
    apply: fail,
    seed: fail,
    get: fail,
    set: fail,
    delete: fail,
    acquireLock: fail,
    releaseLock: fail,
  }
}

/** A store whose calls never answer (test-only): the middleware's own bound must cut in. */
export function hangingStore(): CounterStore {
  const inner = createMemoryStore()
  const hang = () => new Promise<never>(() => {})
  return {
    capabilities: inner.capabilities,
    apply: hang,
    seed: hang,
    get: hang,
    set: hang,
    delete: hang,
    acquireLock: hang,
    releaseLock: hang,
  }
}

/** Parse `"name";r=2;t=60, "other";r=1` into `{ name: { r: 2, t: 60 }, ... }`. */
export function parseItems(header: string | undefined): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {}
  for (const item of (header ?? '').split(/,\s*/).filter(Boolean)) {
    const [name, ...params] = item.split(';')
    const entry: Record<string, number> = {}
    for (const param of params) {
      const [key, value] = param.split('=')
      entry[key!] = Number(value)
    }
    out[JSON.parse(name!)] = entry
  }
  return out
}
