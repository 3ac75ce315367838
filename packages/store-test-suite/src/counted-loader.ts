/**
 * A `loadUsage` that counts how often the engine read the system of record: `reads()` after
 * the calls under test says whether a load happened, and how many times.
 */
export function countedLoader<Usage extends number | Promise<number>>(
  read: () => Usage,
): { loadUsage: () => Usage; reads: () => number } {
  let reads = 0
  return {
    loadUsage: () => {
      reads++
      return read()
    },
    reads: () => reads,
  }
}
