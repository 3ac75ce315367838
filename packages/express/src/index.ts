export * from '@andromeda/core/http/adapter-exports'
export { type ExpressQuotaOptions, expressQuota } from './middleware.js'
