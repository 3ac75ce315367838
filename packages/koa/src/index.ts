export * from '@andromeda/core/http/adapter-exports'
export { type KoaQuotaOptions, koaQuota } from './middleware.js'
