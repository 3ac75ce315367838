export {
  defaultRefundWhen,
  type HeaderOptions,
  type ProblemDetails,
  type QuotaResolver,
  type QuotaTarget,
  type SettleOutcome,
} from '@andromeda/core/http'
export { type KoaQuotaOptions, koaQuota, type QuotaRefusal } from './middleware.js'
