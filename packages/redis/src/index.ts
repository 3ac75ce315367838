export type { IoRedisLike, NodeRedisLike, RedisClientLike } from './clients.js'
export { createRedisStore, type RedisCounterStore, type RedisStoreOptions } from './store.js'
