export type { MemoryCounterStore } from './counter-store.js'
export { createMemoryStore, type MemoryEvictionEvent, type MemoryStoreOptions } from './store.js'
