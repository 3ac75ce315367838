import { memoryStores, redisStores, runMiddlewareCases } from '@andromeda/middleware-cases'
import Fastify from 'fastify'
import Fastify4 from 'fastify4'
import { type FastifyFactory, fastifyHarness } from './harness.js'

const redis = await redisStores()

runMiddlewareCases(fastifyHarness('Fastify 5', Fastify), [memoryStores(), redis])
// Fastify 4's types differ from 5's in details the plugin does not use; its runtime is the point.
runMiddlewareCases(fastifyHarness('Fastify 4', Fastify4 as unknown as FastifyFactory), [memoryStores()])
