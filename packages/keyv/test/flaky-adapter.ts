import { EventEmitter } from 'node:events'

export type Mode = 'ok' | 'throw' | 'false' | 'hang' | 'emit'

/**
 * A Keyv adapter over a Map whose reads and writes can be made to fail the ways Keyv adapters
 * do: throw, answer `false`, never answer, or emit `error` while a call is pending.
 */
export class FlakyAdapter extends EventEmitter {
  readonly map = new Map<string, unknown>()
  getMode: Mode = 'ok'
  setMode: Mode = 'ok'
  /** Only the n-th set from now fails (1 = the next one); 0 = every set follows setMode. */
  failSetNumber = 0
  private sets = 0
  /** Writes that were held back by 'hang': call to let them land. */
  readonly held: Array<() => void> = []
  /** Every key read, in order. */
  readonly reads: string[] = []
  /** The TTL each key was last written with (undefined: none). */
  readonly ttls = new Map<string, number | undefined>()

  async get(key: string) {
    this.reads.push(key)
    return this.run(this.getMode, () => this.map.get(key))
  }

  async set(key: string, value: unknown, ttl?: number) {
    this.sets++
    this.ttls.set(key, ttl)
    const mode = this.failSetNumber === 0 || this.sets === this.failSetNumber ? this.setMode : 'ok'
    return this.run(mode, () => {
      this.map.set(key, value)
      return true
    })
  }

  async delete(key: string) {
    return this.map.delete(key)
  }

  async clear() {
    this.map.clear()
  }

  private run<T>(mode: Mode, work: () => T): Promise<T | false> {
    switch (mode) {
      case 'throw':
        return Promise.reject(new Error('connection reset'))
      case 'false':
        return Promise.resolve(false)
      case 'hang':
        return new Promise((resolve) => this.held.push(() => resolve(work())))
      case 'emit':
        setTimeout(() => this.emit('error', new Error('pool error')), 5)
        return new Promise(() => {})
      default:
        return Promise.resolve(work())
    }
  }
}
