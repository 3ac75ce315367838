import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createMemoryStore } from '@andromeda/memory'
import { afterEach, describe, expect, it } from 'vitest'
import { createTokenBudgetApp, estimateTokens } from '../src/app.js'
import type { Completion, Model } from '../src/model.js'

/** A model whose calls the test answers (or fails) by hand, to look at the budget meanwhile. */
function manualModel() {
  const calls: { prompt: string; maxTokens: number; answer: (c: Completion) => void; fail: (e: Error) => void }[] = []
  let called: () => void = () => {}
  const model: Model = {
    complete: (prompt, { maxTokens }) =>
      new Promise((answer, fail) => {
        calls.push({ prompt, maxTokens, answer, fail })
        called()
      }),
  }
  const nextCall = () =>
    new Promise<(typeof calls)[number]>((resolve) => {
      const take = () => resolve(calls.shift()!)
      if (calls.length > 0) take()
      else called = take
    })
  return { model, nextCall }
}

const servers: Server[] = []
afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
})

/** The app on a free port, on a fresh memory store whose clock (and the quota's) the test sets. */
async function start(model: Model, dailyTokens: Record<string, number>, now = () => Date.now()) {
  const errors: string[] = []
  const { app, tokens } = createTokenBudgetApp({
    store: createMemoryStore({ clock: now }),
    clock: now,
    dailyTokens,
    model,
    holdMs: 120_000,
    modelTimeoutMs: 60_000,
    onError: (_error, where) => errors.push(where),
  })
  const server = createServer(app)
  servers.push(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const complete = async (key: string, body: unknown) => {
    const response = await fetch(`${url}/v1/complete`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': key },
      body: JSON.stringify(body),
    })
    return { status: response.status, headers: response.headers, body: (await response.json()) as any }
  }
  return { tokens, complete, errors }
}

describe('POST /v1/complete', () => {
  it('holds the estimate while the model runs, then keeps the tokens used and gives the rest back', async () => {
    const { model, nextCall } = manualModel()
    const { tokens, complete } = await start(model, { 'key-a': 10_000 })
    const prompt = 'Summarise the flash sale in one line.'
    const estimate = estimateTokens(prompt, 500)
    const pending = complete('key-a', { prompt, maxTokens: 500 })
    const call = await nextCall()
    expect(call.maxTokens).toBe(500)
    // The whole estimate counts while the call runs: no other request can spend it.
    expect((await tokens.get('key-a')).usage).toBe(estimate)
    call.answer({ text: 'ok', inputTokens: 9, outputTokens: 31 })
    const response = await pending
    expect(response.status).toBe(200)
    expect(response.body.usage).toEqual({ inputTokens: 9, outputTokens: 31, totalTokens: 40 })
    expect(response.body.budget).toMatchObject({ limit: 10_000, used: 40, remaining: 9_960 })
    expect((await tokens.get('key-a')).usage).toBe(40)
  })

  it('a request that the held estimates of others leave no room for is refused while they run, and served once they settle', async () => {
    const { model, nextCall } = manualModel()
    const prompt = 'x'.repeat(100)
    const estimate = estimateTokens(prompt, 400)
    const { tokens, complete } = await start(model, { 'key-b': estimate + 100 })
    const first = complete('key-b', { prompt, maxTokens: 400 })
    const call = await nextCall()
    const second = await complete('key-b', { prompt, maxTokens: 400 })
    expect(second.status).toBe(429)
    expect(second.body).toMatchObject({ 'violated-policies': ['tokens'], remaining: 100 })
    call.answer({ text: 'ok', inputTokens: 25, outputTokens: 75 })
    expect((await first).status).toBe(200)
    const third = complete('key-b', { prompt, maxTokens: 400 })
    ;(await nextCall()).answer({ text: 'ok', inputTokens: 25, outputTokens: 75 })
    expect((await third).status).toBe(200)
    expect((await tokens.get('key-b')).usage).toBe(200)
  })

  it('a caller past the day budget gets a 429 with Retry-After until the next UTC day, and the model is not called', async () => {
    const { model, nextCall } = manualModel()
    const now = () => Date.parse('2026-03-01T23:00:00Z')
    const { tokens, complete } = await start(model, { 'key-c': 100 }, now)
    let called = false
    void nextCall().then(() => {
      called = true
    })
    const response = await complete('key-c', { prompt: 'hello', maxTokens: 256 })
    expect(response.status).toBe(429)
    expect(response.headers.get('content-type')).toContain('application/problem+json')
    expect(response.headers.get('retry-after')).toBe('3600')
    expect(response.body).toMatchObject({ limit: 100, remaining: 100, 'retry-after': 3600 })
    expect(called).toBe(false)
    expect((await tokens.get('key-c')).usage).toBe(0)
  })

  it('a model failure gives the whole estimate back and answers 502', async () => {
    const { model, nextCall } = manualModel()
    const { tokens, complete, errors } = await start(model, { 'key-d': 10_000 })
    const pending = complete('key-d', { prompt: 'hello' })
    const call = await nextCall()
    expect((await tokens.get('key-d')).usage).toBe(estimateTokens('hello', 256))
    call.fail(new Error('upstream 500'))
    expect((await pending).status).toBe(502)
    expect(errors).toEqual(['model'])
    expect((await tokens.get('key-d')).usage).toBe(0)
  })

  it('an unknown API key is a 401 and a malformed body a 400, both before anything is held', async () => {
    const { model } = manualModel()
    const { tokens, complete } = await start(model, { 'key-e': 1000 })
    expect((await complete('nobody', { prompt: 'hello' })).status).toBe(401)
    expect((await complete('key-e', { prompt: '' })).status).toBe(400)
    expect((await complete('key-e', { prompt: 'hello', maxTokens: 0 })).status).toBe(400)
    expect((await complete('key-e', { prompt: 'hello', maxTokens: 4097 })).status).toBe(400)
    expect((await tokens.get('key-e')).usage).toBe(0)
  })
})
