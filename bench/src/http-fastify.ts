/** The Fastify contenders of the HTTP section, served by `http-fastify-server.ts`. */
export const FASTIFY_CONTENDERS = ['bare fastify', 'fastifyQuota + memory', '@fastify/rate-limit (memory)']

export const FASTIFY_SERVER = new URL('./http-fastify-server.ts', import.meta.url).pathname
