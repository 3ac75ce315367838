export { createMemoryStore, type MemoryEvictionEvent, type MemoryStoreOptions } from './store.js'
