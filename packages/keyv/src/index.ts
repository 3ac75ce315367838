export type { KeyvLike } from './backend.js'
export { createKeyvStore, type KeyvStoreOptions } from './store.js'
