import { memoryStores, redisStores, runMiddlewareCases } from '@andromeda/middleware-cases'
import Koa from 'koa'
import Koa2 from 'koa2'
import { koaHarness } from './harness.js'

const redis = await redisStores()

runMiddlewareCases(koaHarness('Koa 3', Koa), [memoryStores(), redis])
runMiddlewareCases(koaHarness('Koa 2', Koa2 as typeof Koa), [memoryStores()])
