import { memoryStores, redisStores, runMiddlewareCases } from '@andromeda/middleware-cases'
import { honoHarness } from './harness.js'

const redis = await redisStores()

runMiddlewareCases(honoHarness('Hono 4 (Node)'), [memoryStores(), redis])
