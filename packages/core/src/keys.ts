/**
 * Key building. Every key of one (quota, id) pair shares one Redis hash tag — the part between
 * the first `{` and the next `}` — so a counter, its lock and its idempotency records always
 * sit in one Cluster slot (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags).
 *
 * Names and ids are percent-encoded for `%`, `{`, `}` and `:`, which makes the mapping
 * injective: distinct ids never share a key, and no id can end the hash tag early.
 */

const RESERVED = /[%{}:]/g
const HAS_RESERVED = /[%{}:]/

/** Percent-encode the characters that carry meaning in a key. Injective. */
export function encodeKeyPart(part: string): string {
  return HAS_RESERVED.test(part) ? part.replace(RESERVED, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`) : part
}

/** The hash-tag group of one (quota, id): `{<name>:<id>}`. */
export function keyGroup(quota: string, id: string): string {
  return `{${encodeKeyPart(quota)}:${encodeKeyPart(id)}}`
}

/** Counter key; periodic quotas add the window's start so each window has its own counter. */
export function counterKey(quota: string, id: string, periodStartAt?: number): string {
  const base = `${keyGroup(quota, id)}:usage`
  return periodStartAt === undefined ? base : `${base}:${periodStartAt}`
}

/** Loader lock of one counter. */
export function lockKey(counter: string): string {
  return `${counter}:lock`
}

/**
 * Idempotency record of one operation on one counter. `fingerprint` (the cost, or a digest of
 * a multi-quota request) makes a key reused for a different request a different record, so it
 * is evaluated afresh instead of replaying another request's result.
 */
export function idempotencyKey(counter: string, operation: 'consume' | 'refund' | 'all', key: string, fingerprint = ''): string {
  return `${counter}:idem:${operation}:${encodeKeyPart(key)}:${fingerprint}`
}
