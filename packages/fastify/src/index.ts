export {
  defaultRefundWhen,
  type HeaderOptions,
  type ProblemDetails,
  type QuotaResolver,
  type QuotaTarget,
  type SettleOutcome,
} from '@andromeda/core/http'
export { type FastifyQuotaOptions, fastifyQuota, type QuotaHook, type QuotaRefusal } from './plugin.js'
