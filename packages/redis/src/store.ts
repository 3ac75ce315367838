import type { ApplyOptions, ApplyResult, CounterOp, CounterSnapshot, CounterStore } from '@andromeda/core'
import { InvalidArgumentError } from '@andromeda/core'
import { checkInteger, checkKey } from '@andromeda/core/store'
import calculateSlot from 'cluster-key-slot'
import type { Decode } from './call.js'
import type { RedisCounterStore } from './counter-store.js'
import type { Driver } from './driver.js'
import { type CallArgs, manyOpsArgs, oneOpArgs, optionalInteger } from './op-args.js'
import type { ReplicasOptions } from './replicas.js'
import { decodeApplyEntry, decodeGetEntry, parseApply, parseFlag, parseNothing } from './replies.js'
import { SCRIPTS, type Script } from './scripts/index.js'
import { CallTransport } from './transport.js'

const NO_OPTIONS: ApplyOptions = {}

/**
 * The Redis `CounterStore` behind `createRedisStore` (which checks its options): contract
 * methods check their input and build calls; the `CallTransport` sends them.
 */
export class RedisStore implements RedisCounterStore {
  readonly capabilities: CounterStore['capabilities']
  private readonly transport: CallTransport

  constructor(
    private readonly driver: Driver,
    private readonly prefix: string,
    timeoutMs: number,
    maxOps: number,
    replicas: ReplicasOptions | undefined,
  ) {
    const slotPrefix = driver.clientKeyPrefix + prefix
    this.capabilities = {
      shared: true,
      atomic: 'global',
      canApplyTogether: (keys) => {
        if (!driver.cluster || keys.length <= 1) return true
        const slot = calculateSlot(slotPrefix + keys[0]!)
        return keys.every((key) => calculateSlot(slotPrefix + key) === slot)
      },
    }
    this.transport = new CallTransport(driver, timeoutMs, maxOps, replicas)
  }

  // ------------------------------------------------------------------ contract

  apply(ops: readonly CounterOp[], options: ApplyOptions = NO_OPTIONS): Promise<ApplyResult> {
    // Not `async`: one promise per call, the call's own. Bad input still rejects.
    try {
      if (!Array.isArray(ops)) throw new InvalidArgumentError('ops', 'must be an array')
      if (ops.length === 1) return this.applyOne(ops[0]!, options)
      return this.applyMany(ops, options)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  seed(key: string, value: number, ttlMs?: number, lockToken?: string): Promise<boolean> {
    return this.runOwn(SCRIPTS.seed, key, parseFlag, () => [
      String(checkInteger('value', value, 0)),
      optionalInteger('ttlMs', ttlMs, 1),
      lockToken === undefined ? '' : checkKey('lockToken', lockToken),
    ])
  }

  get(key: string): Promise<CounterSnapshot | undefined> {
    try {
      const counter = this.prefix + checkKey('key', key)
      return this.transport.start('get', [counter], ['g', '', '', '', '', ''], decodeGetEntry, true, undefined, true)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  set(key: string, value: number, ttlMs?: number): Promise<void> {
    return this.runOwn(SCRIPTS.set, key, parseNothing, () => [
      String(checkInteger('value', value, 0)),
      optionalInteger('ttlMs', ttlMs, 1),
    ])
  }

  delete(key: string): Promise<void> {
    return this.runOwn(SCRIPTS.delete, key, parseNothing, () => [])
  }

  acquireLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    return this.runOwn(SCRIPTS.acquireLock, key, parseFlag, () => [
      checkKey('token', token),
      String(checkInteger('ttlMs', ttlMs, 1)),
    ])
  }

  releaseLock(key: string, token: string): Promise<boolean> {
    return this.runOwn(SCRIPTS.releaseLock, key, parseFlag, () => [checkKey('token', token)])
  }

  /** Wait for calls in flight (each bounded by `commandTimeoutMs`), then detach from the client. */
  close(): Promise<void> {
    return this.transport.close()
  }

  // ------------------------------------------------------------------ building calls

  /** One op: a call of the batch script, coalesced with the tick's others. */
  private applyOne(op: CounterOp, options: ApplyOptions): Promise<ApplyResult> {
    const call = oneOpArgs(this.prefix, op, options)
    if (call.keys.length > 1) this.checkOneSlot(call.keys)
    return this.startArgs('apply', call, decodeApplyEntry, options.signal, true)
  }

  /** Several ops, all or nothing: a call of the apply script. */
  private applyMany(ops: readonly CounterOp[], options: ApplyOptions): Promise<ApplyResult> {
    if (ops.length === 0) return Promise.resolve({ ok: true, values: [], ttlMs: [] })
    const call = manyOpsArgs(this.prefix, ops, options)
    this.checkOneSlot(call.keys)
    const n = ops.length
    return this.startArgs('apply', call, (reply) => parseApply(reply, n), options.signal, false)
  }

  private startArgs<T>(
    method: string,
    call: CallArgs,
    decode: Decode<T>,
    signal: AbortSignal | undefined,
    batched: boolean,
  ): Promise<T> {
    return this.transport.start(method, call.keys, call.args, decode, call.idempotent, signal, batched)
  }

  /** A method with a script of its own on one key; these never double-count if sent again. */
  private runOwn<T>(script: Script, key: string, decode: Decode<T>, args: () => string[]): Promise<T> {
    try {
      // Arguments are checked in the order the methods name them: key first.
      const keys = [this.prefix + checkKey('key', key)]
      return this.transport.start(script.name, keys, args(), decode, true, undefined, false, script)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  private checkOneSlot(keys: string[]): void {
    if (!this.driver.cluster) return
    const clientPrefix = this.driver.clientKeyPrefix
    const slot = calculateSlot(clientPrefix + keys[0]!)
    for (let i = 1; i < keys.length; i++) {
      if (calculateSlot(clientPrefix + keys[i]!) !== slot) {
        throw new InvalidArgumentError(
          'ops',
          'keys map to several Redis Cluster slots; check capabilities.canApplyTogether() first',
        )
      }
    }
  }
}
