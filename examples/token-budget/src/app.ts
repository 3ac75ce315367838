import {
  AndromedaError,
  type CounterStore,
  createQuota,
  HoldExpiredError,
  type Quota,
  type QuotaResult,
  type Reservation,
} from '@andromeda/core'
import { PROBLEM_CONTENT_TYPE, quotaExceededProblem, secondsUntil } from '@andromeda/core/http'
import express, { type NextFunction, type Request, type Response } from 'express'
import type { Model } from './model.js'

/** Output tokens a request may ask for, and what it gets when it does not say. */
export const MAX_OUTPUT_TOKENS = 4096
export const DEFAULT_OUTPUT_TOKENS = 256
/** Tokens a chat API adds around a prompt (role markers, separators); generous on purpose. */
const FRAMING_TOKENS = 16

/**
 * The most tokens a call can use: every token of a byte-level tokenizer (BPE, as the large
 * model APIs use) covers at least one byte of the prompt, and the output stops at `maxTokens`.
 * An upper bound, so the budget never pays for more than was held.
 */
export function estimateTokens(prompt: string, maxTokens: number): number {
  return Buffer.byteLength(prompt, 'utf8') + FRAMING_TOKENS + maxTokens
}

export interface TokenQuotaOptions {
  store: CounterStore
  /** Tokens each API key may use per UTC day. Keys not listed have no budget (the app refuses them first). */
  dailyTokens: Record<string, number>
  /** How long an estimate stays held unless committed or released (ms). */
  holdMs: number
  /** Time source of the quota (and of the memory store, in tests). Default `Date.now`. */
  clock?: () => number
}

/** The `tokens` quota: per API key, per UTC day. */
export function createTokenQuota(options: TokenQuotaOptions): Quota {
  const { dailyTokens } = options
  return createQuota({
    name: 'tokens',
    store: options.store,
    limit: (key) => (Object.hasOwn(dailyTokens, key) ? dailyTokens[key]! : null),
    period: 'day',
    holdMs: options.holdMs,
    ...(options.clock ? { clock: options.clock } : {}),
  })
}

export interface TokenBudgetOptions extends TokenQuotaOptions {
  model: Model
  /** Longest model call (ms); shorter than `holdMs`, so a live request commits before its hold lapses. */
  modelTimeoutMs: number
  /** Told about failures no client sees as such (a release that failed). Default: console.error. */
  onError?: (error: unknown, where: string) => void
}

function problem(res: Response, status: number, title: string, detail: string): void {
  res.status(status).type(PROBLEM_CONTENT_TYPE).json({ type: 'about:blank', title, status, detail })
}

/**
 * `POST /v1/complete {prompt, maxTokens?}` with an `x-api-key` header: hold the call's most
 * tokens against the key's daily budget, call the model, keep the tokens it used and give the
 * rest back. 429 (problem+json, `Retry-After` until the next UTC day) when the budget cannot
 * hold the estimate; 502 when the model fails (the estimate goes back). Should the process
 * die during the call, the estimate comes back by itself after `holdMs`.
 * `GET /v1/budget`: the key's budget today.
 */
export function createTokenBudgetApp(options: TokenBudgetOptions): { app: express.Express; tokens: Quota } {
  const { model, holdMs, modelTimeoutMs } = options
  if (!(modelTimeoutMs < holdMs))
    throw new RangeError(`modelTimeoutMs (${modelTimeoutMs}) must be below holdMs (${holdMs})`)
  const report = options.onError ?? ((error, where) => console.error(`[token-budget] ${where}:`, error))
  const clock = options.clock ?? Date.now
  const tokens = createTokenQuota(options)

  /** Keep `used` of the held tokens; if the hold lapsed first (its tokens came back), charge them anew. */
  async function charge(hold: Reservation, key: string, used: number): Promise<QuotaResult> {
    try {
      return await hold.commit(used)
    } catch (error) {
      if (!HoldExpiredError.isInstance(error)) throw error
      return tokens.consume(key, used)
    }
  }

  const app = express()
  app.disable('x-powered-by')
  app.use(express.json({ limit: '64kb' }))
  const apiKey = (req: Request) => {
    const key = req.get('x-api-key')
    return key !== undefined && Object.hasOwn(options.dailyTokens, key) ? key : undefined
  }

  app.post('/v1/complete', async (req, res) => {
    const key = apiKey(req)
    if (!key) return problem(res, 401, 'Unauthorized', 'send a known API key in x-api-key')
    const { prompt, maxTokens = DEFAULT_OUTPUT_TOKENS } = (req.body ?? {}) as { prompt?: unknown; maxTokens?: unknown }
    const validMax =
      typeof maxTokens === 'number' &&
      Number.isSafeInteger(maxTokens) &&
      maxTokens >= 1 &&
      maxTokens <= MAX_OUTPUT_TOKENS
    if (typeof prompt !== 'string' || prompt === '' || !validMax) {
      return problem(
        res,
        400,
        'Bad Request',
        `body must be {"prompt": non-empty string, "maxTokens"?: 1..${MAX_OUTPUT_TOKENS}}`,
      )
    }
    const estimate = estimateTokens(prompt, maxTokens)
    const hold = await tokens.reserve(key, estimate)
    if (!hold.result.allowed) {
      const { limit, remaining, resetAt } = hold.result
      const retryAfterSeconds = resetAt === undefined ? undefined : secondsUntil(resetAt, clock())
      if (retryAfterSeconds !== undefined) res.set('Retry-After', String(retryAfterSeconds))
      const body = quotaExceededProblem({
        policy: tokens.name,
        limit,
        remaining,
        cost: estimate,
        ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
      })
      return res.status(429).type(PROBLEM_CONTENT_TYPE).json(body)
    }
    let completion: Awaited<ReturnType<Model['complete']>>
    try {
      completion = await model.complete(prompt, { maxTokens, signal: AbortSignal.timeout(modelTimeoutMs) })
    } catch (error) {
      // Nothing to pay for: every held token goes back (or comes back by itself should this fail).
      await hold.release().catch((failure: unknown) => report(failure, 'release'))
      report(error, 'model')
      return problem(res, 502, 'Bad Gateway', 'the model did not answer')
    }
    const used = completion.inputTokens + completion.outputTokens
    // At most what was held: the estimate is an upper bound, and a commit cannot keep more.
    // The answer is the caller's either way; a charge that failed is reported (the hold lapses).
    const budget = await charge(hold, key, Math.min(used, hold.cost)).catch((error: unknown) => report(error, 'commit'))
    res.json({
      text: completion.text,
      usage: { inputTokens: completion.inputTokens, outputTokens: completion.outputTokens, totalTokens: used },
      ...(budget
        ? { budget: { limit: budget.limit, used: budget.usage, remaining: budget.remaining, resetAt: budget.resetAt } }
        : {}),
    })
  })

  app.get('/v1/budget', async (req, res) => {
    const key = apiKey(req)
    if (!key) return problem(res, 401, 'Unauthorized', 'send a known API key in x-api-key')
    const { usage, limit, remaining, resetAt } = await tokens.get(key)
    res.json({ limit, used: usage, remaining, resetAt })
  })

  app.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(error)
    const status = (error as { status?: unknown }).status
    if (typeof status === 'number' && status >= 400 && status < 500)
      return problem(res, status, 'Bad Request', (error as Error).message)
    report(error, 'request')
    if (!AndromedaError.isInstance(error)) return problem(res, 500, 'Internal Server Error', 'unexpected error')
    // The quota's store failed or is slow: nothing is held, try again shortly.
    res.set('Retry-After', '1')
    problem(res, 503, 'Service Unavailable', `the token budget cannot be checked right now (${error.code})`)
  })

  return { app, tokens }
}
