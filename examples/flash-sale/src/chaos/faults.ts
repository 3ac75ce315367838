import { setTimeout as sleep } from 'node:timers/promises'
import { counterKey } from '@andromeda/core'
import { Redis } from 'ioredis'
import type { OwnedRedis } from './redis-server.js'
import type { ServiceProcess } from './service.js'

export type FaultKind = 'service-kill' | 'redis-restart' | 'script-flush' | 'client-pause' | 'client-kill'
export const FAULT_KINDS: FaultKind[] = ['service-kill', 'redis-restart', 'script-flush', 'client-pause', 'client-kill']

export interface Fault {
  kind: FaultKind
  /** Seconds since the load began. */
  at: number
  detail: string
  /** service-kill: requests the service had in flight, and voucher units it held, when it died. */
  inFlight?: number
  heldUnits?: number
}

/** What the load and the faults share: whether the service is down, and which life of it a request met. */
export interface ServiceState {
  /** Bumped at every kill: a request that started in an earlier life and failed was cut by the kill. */
  life: number
  down: boolean
  /** Requests sent and not yet answered. */
  inFlight: number
}

/**
 * Voucher units held right now (reserved, neither committed nor released): the Redis store
 * keeps a counter's holds in a sorted set `<counter>:holds` next to it (see @andromeda/redis).
 */
export async function heldVoucherUnits(redis: Redis, keyPrefix: string, codes: string[]): Promise<number> {
  let units = 0
  for (const code of codes) units += await redis.zcard(`${keyPrefix}${counterKey('voucher', code)}:holds`)
  return units
}

/**
 * Inject faults until the load is near its end (`endAt`, on `performance.now()`): each round
 * goes through the kinds in a seeded order (the first one ends with the service kill), with a
 * seeded pause between faults. The last fault is always a service kill, a few seconds before
 * the end, so the holds it leaves can only come back by expiring (no later Redis restart wipes
 * them). Faults never overlap, and the last one has ended (Redis and the service up, no pause)
 * when this resolves; `signal` stops it early.
 */
export async function injectFaults(options: {
  redis: OwnedRedis
  service: ServiceProcess
  state: ServiceState
  keyPrefix: string
  codes: string[]
  next: () => number
  startedAt: number
  endAt: number
  gapMs: [number, number]
  signal: AbortSignal
}): Promise<Fault[]> {
  const { redis, service, state, next, signal } = options
  const faults: Fault[] = []
  // The admin connection: CLIENT KILL skips its own caller, and it reconnects after a restart.
  const admin = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50, connectTimeout: 2000 })
  admin.on('error', () => {})
  const between = (lo: number, hi: number) => Math.round(lo + next() * (hi - lo))
  const wait = (ms: number) =>
    sleep(Math.max(ms, 0), undefined, { signal }).then(
      () => true,
      () => false,
    )
  // Room for the wait for holds (up to 3 s) before the kill, while claims still flow.
  const finalKillAt = options.endAt - 4000

  const held = () => heldVoucherUnits(admin, options.keyPrefix, options.codes)
  // A hold lasts only as long as its claim's commit: one seen by a poll may be settled before
  // the kill lands. So freeze the service (SIGSTOP: it settles nothing more) and count again;
  // it stays frozen (for the kill) once the count holds, and goes on otherwise.
  const freezeHolding = async (waitMs: number) => {
    const until = performance.now() + waitMs
    while (performance.now() < until) {
      if ((await held()) > 0) {
        service.freeze()
        const stillHeld = await held().catch((error: Error) => {
          service.thaw()
          throw error
        })
        if (stillHeld > 0) return
        service.thaw()
      }
      await sleep(2)
    }
  }

  const inject = async (kind: FaultKind, holdWaitMs = 1000) => {
    const at = (performance.now() - options.startedAt) / 1000
    try {
      if (kind === 'service-kill') {
        // A crash in the middle of claims: kill the service at a moment when it holds voucher
        // units (waiting for one is bounded). What it held stays held until the hold time passes.
        const downMs = between(100, 1500)
        await freezeHolding(holdWaitMs)
        const inFlight = state.inFlight
        state.down = true
        state.life++
        await service.kill()
        const heldUnits = await held()
        await sleep(downMs)
        await service.start()
        state.down = false
        faults.push({
          kind,
          at,
          detail: `down ${downMs} ms + start, ${inFlight} in flight, ${heldUnits} held`,
          inFlight,
          heldUnits,
        })
      } else if (kind === 'redis-restart') {
        const downMs = between(100, 1500)
        await redis.kill()
        await sleep(downMs)
        await redis.start()
        faults.push({ kind, at, detail: `down ${downMs} ms` })
      } else if (kind === 'script-flush') {
        await admin.script('FLUSH')
        faults.push({ kind, at, detail: '' })
      } else if (kind === 'client-pause') {
        // Some pauses outlast the store's commandTimeoutMs (2 s): calls time out and the
        // scripts then sitting in Redis's sockets run after their deadline.
        const pauseMs = between(200, 3500)
        await admin.call('CLIENT', 'PAUSE', String(pauseMs), 'ALL')
        faults.push({ kind, at, detail: `${pauseMs} ms` })
        await sleep(pauseMs + 50)
      } else {
        const killed = await admin.call('CLIENT', 'KILL', 'TYPE', 'normal')
        faults.push({ kind, at, detail: `${String(killed)} conn` })
      }
    } catch (error) {
      faults.push({ kind, at, detail: `FAILED: ${(error as Error).message}` })
      // The load waits while the service is down; never leave it waiting on a failed start.
      if (kind === 'service-kill' && !service.running) await service.start().catch(() => {})
      state.down = !service.running
    }
  }

  try {
    // The first round has every Redis fault in a seeded order, then a service kill: when time
    // runs short, the kill is what gives way (the final one stands for it).
    const redisKinds = FAULT_KINDS.filter((kind) => kind !== 'service-kill')
    let round: FaultKind[] = [...redisKinds.sort(() => next() - 0.5), 'service-kill']
    for (;;) {
      const gap = between(...options.gapMs)
      // A fault may last ~4 s (a pause, a restart): none starts that could run into the final kill.
      if (performance.now() + gap + 4000 > finalKillAt) break
      if (!(await wait(gap))) break
      if (round.length === 0) round = [...FAULT_KINDS].sort(() => next() - 0.5)
      await inject(round.shift()!)
    }
    if (await wait(finalKillAt - performance.now())) await inject('service-kill', 3000)
  } finally {
    admin.disconnect()
  }
  return faults
}
