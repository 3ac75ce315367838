export type { KeyvLike } from './backend.js'
export type { KeyvCounterStore } from './counter-store.js'
export { keyvSqlMigration, type KeyvSqlMigrationOptions } from './sql-path.js'
export { createKeyvStore, type KeyvStoreOptions } from './store.js'
