import type { CounterStore } from './store/contract.js'

/**
 * Emit a process warning once per process for `code`. The record of codes already emitted
 * lives on `globalThis` under a registered symbol, so two installed copies of core warn once
 * between them.
 */
export function warnOnce(code: string, message: string): void {
  const registry = globalThis as { [key: symbol]: Set<string> | undefined }
  const slot = Symbol.for('andromeda.warnedCodes')
  const warned = registry[slot] ?? new Set<string>()
  registry[slot] = warned
  if (warned.has(code)) return
  warned.add(code)
  process.emitWarning(message, { code })
}

/** Warn (once per process) that a store shared between processes is atomic only within one. */
export function warnIfProcessAtomicShared(store: CounterStore): void {
  const { shared, atomic } = store.capabilities
  if (!shared || atomic !== 'process') return
  warnOnce(
    'ANDROMEDA_PROCESS_ATOMIC_STORE',
    'This CounterStore is shared between processes but atomic only within one: concurrent processes can exceed a limit. Use a globally atomic store (Redis) when several processes consume the same quota.',
  )
}
