export type { IoRedisLike, NodeRedisLike, RedisClientLike } from './clients.js'
export { createRedisStore, type RedisStoreOptions } from './store.js'
