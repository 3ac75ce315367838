export * from '@andromeda/core/http/adapter-exports'
export { type HonoQuotaOptions, honoQuota, type QuotaVariables } from './middleware.js'
