/**
 * Which keys this process wrote with an expiry, soonest first, so the process-atomic path can
 * delete what expired: Keyv adapters such as the default `Map` keep a value until it is read
 * through Keyv (the store reads the adapter directly) or overwritten, so past windows, one-off
 * ids, idempotency records and settled marks would otherwise pile up for good.
 *
 * A key is indexed once per expiry (a counter updated in place keeps its expiry: no new
 * entry); an entry whose key was written again with another expiry is stale and skipped.
 */
export class ExpiryIndex {
  /** Binary min-heap on `at`. */
  private readonly heap: { at: number; key: string }[] = []
  /** The latest expiry indexed for each key. */
  private readonly latest = new Map<string, number>()

  /** Keys indexed (a bound for tests and footprint checks). */
  get size(): number {
    return this.latest.size
  }

  /** Note that `key` was written to expire at `at` (epoch ms); undefined: it never expires. */
  note(key: string, at: number | undefined): void {
    if (at === undefined) {
      this.latest.delete(key)
      return
    }
    if (this.latest.get(key) === at) return
    this.latest.set(key, at)
    this.heap.push({ at, key })
    this.up(this.heap.length - 1)
  }

  /** Note that `key` was deleted. */
  forget(key: string): void {
    this.latest.delete(key)
  }

  /** Take up to `max` keys whose indexed expiry is at or before `now` (stale entries skipped). */
  due(now: number, max: number): string[] {
    const keys: string[] = []
    // Bounded work: stale entries count toward the pops allowed.
    for (let pops = 0; pops < max * 2 && keys.length < max && this.heap.length > 0 && this.heap[0]!.at <= now; pops++) {
      const top = this.pop()!
      if (this.latest.get(top.key) !== top.at) continue
      this.latest.delete(top.key)
      keys.push(top.key)
    }
    return keys
  }

  private pop(): { at: number; key: string } | undefined {
    const heap = this.heap
    const top = heap[0]
    const last = heap.pop()
    if (heap.length > 0 && last !== undefined) {
      heap[0] = last
      this.down(0)
    }
    return top
  }

  private up(i: number): void {
    const heap = this.heap
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (heap[parent]!.at <= heap[i]!.at) return
      ;[heap[parent], heap[i]] = [heap[i]!, heap[parent]!]
      i = parent
    }
  }

  private down(i: number): void {
    const heap = this.heap
    for (;;) {
      const left = 2 * i + 1
      const right = left + 1
      let least = i
      if (left < heap.length && heap[left]!.at < heap[least]!.at) least = left
      if (right < heap.length && heap[right]!.at < heap[least]!.at) least = right
      if (least === i) return
      ;[heap[least], heap[i]] = [heap[i]!, heap[least]!]
      i = least
    }
  }
}
