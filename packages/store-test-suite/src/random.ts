import { randomBytes } from 'node:crypto'

/** A key no other test (or run) uses, in its own hash-tag group. */
export function randomKey(label = 'k'): string {
  return `{t${randomBytes(6).toString('hex')}}:${label}`
}

/** Keys that share one hash-tag group (so a Cluster store can apply them together). */
export function keyGroup(count: number): string[] {
  const tag = `{t${randomBytes(6).toString('hex')}}`
  return Array.from({ length: count }, (_, i) => `${tag}:k${i}`)
}

/** A quota name no other test (or run) uses. */
export function randomName(label = 'q'): string {
  return `${label}-${randomBytes(6).toString('hex')}`
}
