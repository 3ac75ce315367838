export {
  defaultRefundWhen,
  type HeaderOptions,
  type ProblemDetails,
  type QuotaResolver,
  type QuotaTarget,
  type SettleOutcome,
} from '@andromeda/core/http'
export { type HonoQuotaOptions, honoQuota, type QuotaRefusal, type QuotaVariables } from './middleware.js'
