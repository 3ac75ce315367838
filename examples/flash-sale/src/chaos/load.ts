import { setMaxListeners } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { Agent, request } from 'undici'
import { bump } from '../tools.js'
import type { ServiceState } from './faults.js'

export interface LoadOptions {
  url: string
  codes: string[]
  requests: number
  durationMs: number
  users: number
  concurrency: number
  unclaimRatio: number
  /** Client-side bound of one request (ms). */
  timeoutMs: number
}

export interface LoadResult {
  sent: number
  claims: number
  unclaims: number
  /** Claims the clients hold at the end (a 201 seen, no 200 unclaim since), as `${user} ${voucher}`. */
  held: Set<string>
  /**
   * Claims whose request was cut by a service kill after it may have reached the service:
   * the client cannot know whether the row is there (a claim) or gone (an unclaim).
   */
  inDoubt: Set<string>
  /** 409 refusals by reason. */
  refused: Map<string, number>
  /** Typed failures (503 with a problem body carrying `code`), by code. */
  typed: Map<string, number>
  /**
   * Unclaims that failed (an error answer, or none), by voucher: one of their refunds may have
   * gone through while the claim row stayed, so the voucher's counter may be that much below it.
   */
  failedUnclaims: Map<string, number>
  /** Requests a service kill cut, or that met no service: `cut`, `connection refused`. */
  lost: Map<string, number>
  /** Anything else: a 500, a 503 without a code, a reset connection while the service was up. */
  untyped: Map<string, number>
  /** Requests that did not settle within the client-side bound. */
  hung: number
  latenciesMs: number[]
  durationMs: number
}

type Answer = { status: number; body: { reason?: unknown; code?: unknown } } | { lost: 'cut' | 'refused' } | undefined

/**
 * Claims (and unclaims of claims this client holds) over HTTP, paced so `requests` spread over
 * `durationMs`, `concurrency` in flight; waits while the service is down (as a client backing
 * off would); stops at the count, the time, or `signal`.
 */
export async function runLoad(
  o: LoadOptions,
  state: ServiceState,
  next: () => number,
  signal: AbortSignal,
): Promise<LoadResult> {
  const result: LoadResult = {
    sent: 0,
    claims: 0,
    unclaims: 0,
    held: new Set(),
    inDoubt: new Set(),
    refused: new Map(),
    typed: new Map(),
    failedUnclaims: new Map(),
    lost: new Map(),
    untyped: new Map(),
    hung: 0,
    latenciesMs: [],
    durationMs: 0,
  }
  // Claims held, in a list to pick one at random; a claim is out of it while its unclaim is in flight.
  const held: string[] = []
  setMaxListeners(o.concurrency * 4 + 20, signal)
  const agent = new Agent({ connections: o.concurrency, headersTimeout: o.timeoutMs, bodyTimeout: o.timeoutMs })
  const started = performance.now()
  const stopAt = started + o.durationMs
  const intervalMs = o.durationMs / o.requests
  let scheduled = 0

  const one = async (path: '/claim' | '/unclaim', voucher: string, user: string): Promise<Answer> => {
    const bound = AbortSignal.timeout(o.timeoutMs)
    const life = state.life
    const t0 = performance.now()
    state.inFlight++
    try {
      const response = await request(`${o.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ voucher, user }),
        dispatcher: agent,
        signal: AbortSignal.any([signal, bound]),
      })
      const text = await response.body.text()
      result.latenciesMs.push(performance.now() - t0)
      let body: { reason?: unknown; code?: unknown } = {}
      try {
        body = JSON.parse(text)
      } catch {}
      return { status: response.statusCode, body }
    } catch (error) {
      const code = (error as { code?: unknown }).code
      if (bound.aborted) {
        result.hung++
        result.latenciesMs.push(performance.now() - t0)
      } else if (signal.aborted) {
        // The run was interrupted: nothing to count.
      } else if (state.down || state.life !== life) {
        const lost = code === 'ECONNREFUSED' ? 'refused' : 'cut'
        bump(result.lost, lost === 'cut' ? 'cut' : 'connection refused')
        return { lost }
      } else bump(result.untyped, typeof code === 'string' ? code : (error as Error).name || 'Error')
      return undefined
    } finally {
      state.inFlight--
    }
  }
  const failure = (status: number, body: { code?: unknown }) => {
    if (status === 503 && typeof body.code === 'string') bump(result.typed, body.code)
    else bump(result.untyped, `HTTP ${status}${typeof body.code === 'string' ? ` ${body.code}` : ''}`)
  }

  const worker = async () => {
    while (!signal.aborted && scheduled < o.requests) {
      const slotAt = started + scheduled++ * intervalMs
      if (slotAt >= stopAt) break
      const delay = slotAt - performance.now()
      if (delay > 0) await sleep(delay)
      while (state.down && !signal.aborted && performance.now() < stopAt) await sleep(20)
      if (signal.aborted || performance.now() >= stopAt) break
      result.sent++
      if (held.length > 0 && next() < o.unclaimRatio) {
        const [pair] = held.splice(Math.floor(next() * held.length), 1)
        const [user, voucher] = pair!.split(' ') as [string, string]
        result.unclaims++
        const answer = await one('/unclaim', voucher, user)
        if (!answer || ('status' in answer && answer.status !== 200)) bump(result.failedUnclaims, voucher)
        if (!answer) continue
        if ('lost' in answer) {
          if (answer.lost === 'cut') result.inDoubt.add(pair!)
          else held.push(pair!) // it never reached the service
        } else if (answer.status !== 200) {
          failure(answer.status, answer.body)
          held.push(pair!) // still held (a 503 changed nothing)
        }
      } else {
        const voucher = o.codes[Math.floor(next() * o.codes.length)]!
        const user = `user-${Math.floor(next() * o.users) + 1}`
        const pair = `${user} ${voucher}`
        result.claims++
        const answer = await one('/claim', voucher, user)
        if (!answer) continue
        if ('lost' in answer) {
          // A claim of a pair already held cannot add a row (the primary key refuses it).
          if (answer.lost === 'cut' && !held.includes(pair)) result.inDoubt.add(pair)
        } else if (answer.status === 201) {
          held.push(pair)
          result.inDoubt.delete(pair) // this claim inserted the row: there was none before
        } else if (answer.status === 409) bump(result.refused, String(answer.body.reason ?? 'conflict'))
        else failure(answer.status, answer.body)
      }
    }
  }
  await Promise.all(Array.from({ length: o.concurrency }, worker))
  result.durationMs = performance.now() - started
  result.held = new Set(held)
  await agent.close().catch(() => {})
  return result
}
