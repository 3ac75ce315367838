import { type CounterStore, createQuota, type Quota } from '@andromeda/core'
import { koaQuota } from '@andromeda/koa'
import Router from '@koa/router'
import Koa from 'koa'

export type Plan = 'free' | 'pro'

/** API calls per calendar month (UTC) of each plan. */
export const MONTHLY_CALLS: Record<Plan, number> = { free: 1000, pro: 100_000 }

const WEATHER: Record<string, { tempC: number; sky: string }> = {
  lisbon: { tempC: 19, sky: 'clear' },
  oslo: { tempC: -3, sky: 'snow' },
  jakarta: { tempC: 31, sky: 'rain' },
}

export interface ApiPlanOptions {
  /** Where the monthly counters live, e.g. `createKeyvStore({ keyv })`. */
  store: CounterStore
  /** Look up an API key's plan; undefined for an unknown key (401). */
  planOf: (apiKey: string) => Plan | undefined | Promise<Plan | undefined>
  /** Override the monthly limits (tests use small ones). */
  monthlyCalls?: Partial<Record<Plan, number>>
  /** Clock of the monthly period (epoch ms). Default `Date.now`. */
  clock?: () => number
}

/**
 * A Koa API whose calls are charged against a monthly quota per API key.
 *
 * - Every `/v1/*` call costs 1, `POST /v1/reports` costs 25; `GET /v1/usage` is free.
 * - Answers carry `RateLimit-Policy: "api";q=1000;w=2592000` and `RateLimit: "api";r=..;t=..`.
 * - Past the limit: 429 problem+json with `Retry-After` (the start of next month).
 * - A call that fails (status >= 400, e.g. an unknown city) is not charged: the unit goes back.
 */
export function createApiPlanApp(options: ApiPlanOptions): { app: Koa; quota: Quota } {
  const limits = { ...MONTHLY_CALLS, ...options.monthlyCalls }
  const quota = createQuota<{ plan: Plan }>({
    name: 'api',
    store: options.store,
    limit: (_key, ctx) => limits[ctx.data!.plan],
    period: 'month',
    ...(options.clock ? { clock: options.clock } : {}),
  })

  const app = new Koa()
  // Who is calling: an unknown or missing key is refused before anything is counted.
  app.use(async (ctx, next) => {
    const apiKey = ctx.get('x-api-key')
    const plan = apiKey ? await options.planOf(apiKey) : undefined
    if (!plan) {
      ctx.status = 401
      ctx.type = 'application/problem+json'
      ctx.body = { type: 'about:blank', title: 'Unauthorized', status: 401, detail: 'send a valid X-API-Key header' }
      return
    }
    ctx.state.apiKey = apiKey
    ctx.state.plan = plan
    await next()
  })
  app.use(
    koaQuota({
      quota: (ctx) => ({
        quota,
        id: ctx.state.apiKey as string,
        cost: ctx.method === 'POST' && ctx.path === '/v1/reports' ? 25 : 1,
        data: { plan: ctx.state.plan as Plan },
      }),
      skip: (ctx) => ctx.path === '/v1/usage',
    }),
  )

  const router = new Router({ prefix: '/v1' })
  router.get('/weather/:city', (ctx) => {
    const weather = WEATHER[ctx.params.city!.toLowerCase()]
    if (!weather) {
      ctx.status = 404 // not charged: the middleware refunds a status >= 400
      ctx.body = { error: `no weather for "${ctx.params.city}"` }
      return
    }
    ctx.body = { city: ctx.params.city, ...weather, callsLeft: ctx.state.quota.remaining }
  })
  router.post('/reports', (ctx) => {
    ctx.status = 202
    ctx.body = { report: 'queued', callsLeft: ctx.state.quota.remaining }
  })
  router.get('/usage', async (ctx) => {
    const state = await quota.get(ctx.state.apiKey, { data: { plan: ctx.state.plan } })
    ctx.body = {
      plan: ctx.state.plan,
      used: state.usage,
      limit: state.limit,
      remaining: state.remaining,
      resetAt: state.resetAt,
    }
  })
  app.use(router.routes())
  app.use(router.allowedMethods())
  return { app, quota }
}
