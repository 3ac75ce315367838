export {
  defaultRefundWhen,
  type HeaderOptions,
  type ProblemDetails,
  type QuotaRefusal,
  type QuotaResolver,
  type QuotaTarget,
  type SettleOutcome,
} from '@andromeda/core/http'
export { type KoaQuotaOptions, koaQuota } from './middleware.js'
