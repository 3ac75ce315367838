export * from '@andromeda/core/http/adapter-exports'
export { type FastifyQuotaOptions, fastifyQuota, type QuotaHook } from './plugin.js'
