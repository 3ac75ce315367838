export type { KeyvLike } from './backend.js'
export type { KeyvCounterStore } from './counter-store.js'
export { type KeyvSqlMigrationOptions, keyvSqlMigration } from './sql-path.js'
export { createKeyvStore, type KeyvStoreOptions } from './store.js'
