import { memoryStores, redisStores, runMiddlewareCases } from '@andromeda/middleware-cases'
import express from 'express'
import express4 from 'express4'
import { expressHarness } from './harness.js'

const redis = await redisStores()

runMiddlewareCases(expressHarness('Express 5', express), [memoryStores(), redis])
runMiddlewareCases(expressHarness('Express 4', express4 as typeof express), [memoryStores()])
