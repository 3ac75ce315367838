import { InvalidArgumentError } from './errors.js'
import { PERIODS } from './period.js'
import type { QuotaHooks, QuotaOptions } from './quota-options.js'
import type { CounterStore } from './store/contract.js'
import type { Period, Resolvable } from './types.js'
import {
  checkCount,
  checkDurationMs,
  checkFunction,
  checkOneOf,
  checkOptionalDurationMs,
  checkOptionKeys,
  checkString,
  checkTimerMs,
  MAX_NAME_LENGTH,
} from './validate.js'

/** `createQuota` options after validation, with defaults filled in. */
export interface QuotaConfig<D> {
  name: string
  store: CounterStore
  limit: Resolvable<number | null, D>
  limitCacheTtlMs: number | undefined
  loadUsage: QuotaOptions<D>['loadUsage']
  ttlMs: Resolvable<number | undefined, D> | undefined
  period: Period | undefined
  lock: { ttlMs: number; retries: number; retryDelayMs: number }
  onStoreError: 'throw' | 'allow' | 'deny'
  cost: QuotaOptions<D>['cost']
  idempotencyTtlMs: number
  holdMs: number
  /** undefined: no retries. */
  retry: { attempts: number; budgetMs: number } | undefined
  clock: () => number
  hooks: QuotaHooks<D>
}

export const DEFAULT_IDEMPOTENCY_TTL_MS = 24 * 3_600_000
export const DEFAULT_HOLD_MS = 60_000
export const DEFAULT_RETRY = { attempts: 3, budgetMs: 2500 } as const
/**
 * The Go original's LockIn 3 s and RetryIn 100 ms; waiters retry 30 times (its MaxRetry was 10)
 * so they wait as long as a lock can live instead of giving up while a load is still running.
 */
export const DEFAULT_LOCK = { ttlMs: 3000, retries: 30, retryDelayMs: 100 } as const

/** Every option `createQuota` knows; any other key is refused (a misspelt `perod` must not pass silently). */
const QUOTA_OPTION_KEYS = [
  'name',
  'store',
  'limit',
  'limitCacheTtlMs',
  'loadUsage',
  'ttlMs',
  'period',
  'lock',
  'onStoreError',
  'cost',
  'idempotencyTtlMs',
  'holdMs',
  'retry',
  'clock',
  'hooks',
]

const HOOK_NAMES = ['onConsume', 'onRefund', 'onExceeded', 'onLoad', 'onError', 'onCompensate']

const STORE_METHODS = ['apply', 'seed', 'get', 'set', 'delete', 'acquireLock', 'releaseLock'] as const

function checkStore(store: unknown): CounterStore {
  if (typeof store !== 'object' || store === null) throw new InvalidArgumentError('store', 'must be a CounterStore')
  for (const method of STORE_METHODS) {
    if (typeof (store as Record<string, unknown>)[method] !== 'function') {
      throw new InvalidArgumentError('store', `must be a CounterStore (missing ${method}())`)
    }
  }
  const capabilities = (store as CounterStore).capabilities
  if (typeof capabilities?.canApplyTogether !== 'function') {
    throw new InvalidArgumentError('store', 'must be a CounterStore (missing capabilities)')
  }
  return store as CounterStore
}

/** A constant or a function; constants are checked now, functions on every call. */
function checkResolvable(value: unknown, checkConstant: (v: unknown) => void): void {
  if (typeof value === 'function') return
  checkConstant(value)
}

function checkRetry(value: unknown): { attempts: number; budgetMs: number } | undefined {
  if (value === false) return undefined
  if (value === undefined) return { ...DEFAULT_RETRY }
  if (typeof value !== 'object' || value === null)
    throw new InvalidArgumentError('retry', 'must be false or { attempts?, budgetMs? }')
  checkOptionKeys('retry', value, ['attempts', 'budgetMs'])
  const { attempts = DEFAULT_RETRY.attempts, budgetMs = DEFAULT_RETRY.budgetMs } = value as {
    attempts?: number
    budgetMs?: number
  }
  return { attempts: checkCount('retry.attempts', attempts), budgetMs: checkDurationMs('retry.budgetMs', budgetMs) }
}

/** Largest gap (ms) tolerated between the quota's clock and its store's injected one. */
const CLOCK_TOLERANCE_MS = 1000

/**
 * One time source per quota: its own `clock`, else the store's injected one, else `Date.now`.
 * Two clocks that disagree (the quota's and the store's) would make windows, reset times and
 * TTLs contradict each other: refused.
 */
function resolveClock(own: (() => number) | undefined, store: CounterStore): () => number {
  const storeClock = typeof store.clock === 'function' ? store.clock : undefined
  if (own === undefined) return storeClock ?? Date.now
  if (storeClock !== undefined && own !== storeClock) {
    const gap = Math.abs(own() - storeClock())
    if (!(gap <= CLOCK_TOLERANCE_MS)) {
      throw new InvalidArgumentError(
        'clock',
        `disagrees with the store's clock by ${gap} ms; inject one clock (in the store, or the same function in both)`,
      )
    }
  }
  return own
}

/** Validate `createQuota` options synchronously; throws `InvalidArgumentError` naming the option. */
export function resolveConfig<D>(options: QuotaOptions<D>): QuotaConfig<D> {
  if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options', 'must be an object')
  checkOptionKeys('', options, QUOTA_OPTION_KEYS)
  const name = checkString('name', options.name, MAX_NAME_LENGTH)
  const store = checkStore(options.store)
  if (options.limit === undefined) throw new InvalidArgumentError('limit', 'is required (a number, null or a function)')
  checkResolvable(options.limit, (v) => v === null || checkCount('limit', v))
  if (options.ttlMs !== undefined) checkResolvable(options.ttlMs, (v) => checkDurationMs('ttlMs', v))
  const period = options.period === undefined ? undefined : checkOneOf('period', options.period, PERIODS)
  if (options.loadUsage !== undefined) checkFunction('loadUsage', options.loadUsage)
  if (options.cost !== undefined) checkFunction('cost', options.cost)
  if (options.clock !== undefined) checkFunction('clock', options.clock)
  if (options.lock !== undefined && (typeof options.lock !== 'object' || options.lock === null)) {
    throw new InvalidArgumentError('lock', 'must be an object { ttlMs?, retries?, retryDelayMs? }')
  }
  checkOptionKeys('lock', options.lock, ['ttlMs', 'retries', 'retryDelayMs'])
  const lock = { ...DEFAULT_LOCK, ...options.lock }
  // Both are timers (the load's deadline, the wait between tries): at most 2^31 - 1 ms.
  checkTimerMs('lock.ttlMs', lock.ttlMs)
  checkCount('lock.retries', lock.retries)
  if (checkCount('lock.retryDelayMs', lock.retryDelayMs) > 0) checkTimerMs('lock.retryDelayMs', lock.retryDelayMs)
  const hooks = options.hooks ?? {}
  if (typeof hooks !== 'object' || hooks === null) throw new InvalidArgumentError('hooks', 'must be an object')
  for (const [key, hook] of Object.entries(hooks)) {
    if (!HOOK_NAMES.includes(key))
      throw new InvalidArgumentError(`hooks.${key}`, `is not a hook; hooks are ${HOOK_NAMES.join(', ')}`)
    checkFunction(`hooks.${key}`, hook)
  }
  return {
    name,
    store,
    limit: options.limit,
    limitCacheTtlMs: checkOptionalDurationMs('limitCacheTtlMs', options.limitCacheTtlMs),
    loadUsage: options.loadUsage,
    ttlMs: options.ttlMs,
    period,
    lock,
    onStoreError: checkOneOf('onStoreError', options.onStoreError ?? 'throw', ['throw', 'allow', 'deny']),
    cost: options.cost,
    idempotencyTtlMs:
      checkOptionalDurationMs('idempotencyTtlMs', options.idempotencyTtlMs) ?? DEFAULT_IDEMPOTENCY_TTL_MS,
    holdMs: checkOptionalDurationMs('holdMs', options.holdMs) ?? DEFAULT_HOLD_MS,
    retry: checkRetry(options.retry),
    clock: resolveClock(options.clock, store),
    hooks,
  }
}
