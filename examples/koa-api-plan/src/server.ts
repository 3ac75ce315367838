import { createApiPlanApp, type Plan } from './app.js'
import { openKeyvStore } from './keyv.js'

// Demo keys; a real service looks them up in its database.
const KEYS: Record<string, Plan> = { 'free-key': 'free', 'pro-key': 'pro' }

const { store, close } = openKeyvStore({ redisUrl: process.env.REDIS_URL || undefined })
const { app } = createApiPlanApp({ store, planOf: (key) => KEYS[key] })
const port = Number(process.env.PORT ?? 3000)
const server = app.listen(port, '127.0.0.1', () => {
  console.log(
    `koa-api-plan on http://127.0.0.1:${port}  (try: curl -i -H 'x-api-key: free-key' localhost:${port}/v1/weather/lisbon)`,
  )
})
const stop = () => {
  server.close(() => {
    close().finally(() => process.exit(0))
  })
  server.closeIdleConnections()
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
