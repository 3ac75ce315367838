import type { MiddlewareCase } from './case.js'
import { HEADER_CASES } from './cases/headers.js'
import { IDEMPOTENCY_CASES } from './cases/idempotency.js'
import { OPTION_CASES } from './cases/options.js'
import { REFUND_CASES } from './cases/refunds.js'
import { REQUEST_CASES } from './cases/requests.js'
import { STORE_FAULT_CASES } from './cases/store-faults.js'

export type { CaseContext, MiddlewareCase } from './case.js'

/** The whole table, one file per concern under `cases/`. Every case gets fresh stores, so the order is free. */
export const MIDDLEWARE_CASES: MiddlewareCase[] = [
  ...HEADER_CASES,
  ...REFUND_CASES,
  ...STORE_FAULT_CASES,
  ...IDEMPOTENCY_CASES,
  ...REQUEST_CASES,
  ...OPTION_CASES,
]
