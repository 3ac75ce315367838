export type { IoRedisLike, NodeRedisLike, RedisClientLike } from './clients.js'
export type { RedisCounterStore } from './counter-store.js'
export { createRedisStore, type RedisStoreOptions } from './create-store.js'
export { ReplicasNotReachedError, type ReplicasOptions } from './replicas.js'
