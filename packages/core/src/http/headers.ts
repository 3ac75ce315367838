/**
 * RateLimit header fields, per draft-ietf-httpapi-ratelimit-headers (Structured Fields,
 * RFC 9651): `RateLimit-Policy: "voucher";q=100;w=86400` and `RateLimit: "voucher";r=42;t=3600`.
 * Several quotas on one response are items of one List; a second middleware appends its item.
 */

/** Read and write response headers of one exchange; the Express and Koa adapters supply it. */
export interface HeaderAccess {
  /** Current value of a response header (a list joined with `, `), or undefined. */
  get(name: string): string | undefined
  /** Replace a response header. */
  set(name: string, value: string): void
  /** True once the response head has gone out: nothing may be set any more. */
  sent(): boolean
}

/** A `HeaderAccess` over a framework's own header functions (`QuotaGate.headerAccess`): values read as text. */
export function headerAccessOf(
  read: (name: string) => unknown,
  write: (name: string, value: string) => void,
  sent: () => boolean,
): HeaderAccess {
  return {
    get(name) {
      const value = read(name)
      if (value === undefined || value === null || value === '') return undefined
      return Array.isArray(value) ? value.join(', ') : String(value)
    },
    set: write,
    sent,
  }
}

/** Which header fields the middleware writes. */
export interface HeaderOptions {
  /** `RateLimit` and `RateLimit-Policy` (the current draft). Default true. */
  draft?: boolean
  /**
   * Older fields some clients still read, off by default:
   * `'ratelimit'` writes `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds
   * until reset, draft 06); `'x-ratelimit'` writes `X-RateLimit-Limit`, `X-RateLimit-Remaining`,
   * `X-RateLimit-Reset` (epoch seconds, as GitHub and express-rate-limit do).
   * With several quotas on one response the one with the fewest remaining units wins.
   */
  legacy?: false | 'ratelimit' | 'x-ratelimit'
}

/** The state of one quota policy as the headers show it. */
export interface RateLimitInfo {
  /** Policy name: the quota's name. */
  policy: string
  /** Units the window allows (`q`). */
  limit: number
  /** Units left (`r`). */
  remaining: number
  /** Seconds until the counter resets (`t`), when known; at least 1. */
  resetSeconds?: number
  /** Epoch ms of the reset, when known (for `X-RateLimit-Reset`). */
  resetAt?: number
  /** Nominal window length in seconds (`w`), periodic quotas only. */
  windowSeconds?: number
}

/** Largest Integer a Structured Field may carry (RFC 9651 section 3.3.1). */
const SF_MAX_INTEGER = 999_999_999_999_999

function sfInteger(value: number): string {
  return String(Math.min(Math.max(Math.floor(value), 0), SF_MAX_INTEGER))
}

const SF_STRING_CACHE_SIZE = 1024
const sfStrings = new Map<string, string>()

/**
 * Serialize a Structured Field String (RFC 9651 section 4.1.6). A String holds printable ASCII
 * only, so other characters (and `%` itself, to keep the mapping reversible) are
 * percent-encoded as UTF-8: the quota `café` is listed as `"caf%C3%A9"`.
 */
export function sfString(value: string): string {
  let serialized = sfStrings.get(value)
  if (serialized === undefined) {
    // Policy names are quota names: a handful per app, serialized once each.
    if (sfStrings.size >= SF_STRING_CACHE_SIZE) sfStrings.clear()
    serialized = serializeSfString(value)
    sfStrings.set(value, serialized)
  }
  return serialized
}

function serializeSfString(value: string): string {
  let out = ''
  for (const ch of value) {
    const code = ch.codePointAt(0)!
    if (code === 0x25 || code < 0x20 || code > 0x7e) {
      try {
        out += encodeURIComponent(ch)
      } catch {
        out += '%EF%BF%BD' // a lone surrogate: U+FFFD
      }
    } else if (ch === '"' || ch === '\\') {
      out += `\\${ch}`
    } else {
      out += ch
    }
  }
  return `"${out}"`
}

/** Whole seconds from `now` until `resetAt`, at least 1 (the `t` parameter and `Retry-After`). */
export function secondsUntil(resetAt: number, now: number): number {
  return Math.max(1, Math.ceil((resetAt - now) / 1000))
}

/** One `RateLimit-Policy` item: `"name";q=100;w=60` (`w` only when the window is known). */
export function formatPolicyItem(info: RateLimitInfo): string {
  const window = info.windowSeconds === undefined ? '' : `;w=${sfInteger(info.windowSeconds)}`
  return `${sfString(info.policy)};q=${sfInteger(info.limit)}${window}`
}

/** One `RateLimit` item: `"name";r=42;t=3600` (`t` only when the reset time is known). */
export function formatRateLimitItem(info: RateLimitInfo): string {
  const reset = info.resetSeconds === undefined ? '' : `;t=${sfInteger(info.resetSeconds)}`
  return `${sfString(info.policy)};r=${sfInteger(info.remaining)}${reset}`
}

/** Split a List field into its members, ignoring commas inside Strings. */
function splitList(value: string): string[] {
  const items: string[] = []
  let current = ''
  let quoted = false
  for (let i = 0; i < value.length; i++) {
    const ch = value[i]!
    if (quoted && ch === '\\') {
      current += ch + (value[i + 1] ?? '')
      i++
      continue
    }
    if (ch === '"') quoted = !quoted
    if (ch === ',' && !quoted) {
      if (current.trim()) items.push(current.trim())
      current = ''
    } else {
      current += ch
    }
  }
  if (current.trim()) items.push(current.trim())
  return items
}

/**
 * Add `item` to a List field's current value. An item naming the same policy is replaced, so a
 * response never lists one policy twice (the draft forbids it); other items keep their order.
 */
export function appendListItem(existing: string | undefined, item: string): string {
  if (!existing) return item
  const key = item.split(';', 1)[0]!
  const items = splitList(existing).filter((member) => member.split(';', 1)[0]!.trim() !== key)
  items.push(item)
  return items.join(', ')
}

/** Normalise the `headers` option: `true`/undefined is the draft fields only, `false` none. */
export function resolveHeaderOptions(option: boolean | HeaderOptions | undefined): Required<HeaderOptions> {
  if (option === false) return { draft: false, legacy: false }
  if (option === true || option === undefined) return { draft: true, legacy: false }
  return { draft: option.draft ?? true, legacy: option.legacy ?? false }
}

/**
 * Write the RateLimit fields for one policy, appending to what an earlier middleware wrote.
 * Does nothing once the response head was sent.
 */
export function writeRateLimitHeaders(
  access: HeaderAccess,
  info: RateLimitInfo,
  options: Required<HeaderOptions>,
): void {
  if (access.sent()) return
  if (options.draft) {
    access.set('RateLimit-Policy', appendListItem(access.get('RateLimit-Policy'), formatPolicyItem(info)))
    access.set('RateLimit', appendListItem(access.get('RateLimit'), formatRateLimitItem(info)))
  }
  if (options.legacy) {
    const prefix = options.legacy === 'x-ratelimit' ? 'X-RateLimit' : 'RateLimit'
    const previous = Number(access.get(`${prefix}-Remaining`))
    // One set of legacy fields per response: keep the most restrictive quota's.
    if (access.get(`${prefix}-Remaining`) !== undefined && Number.isFinite(previous) && previous <= info.remaining)
      return
    access.set(`${prefix}-Limit`, sfInteger(info.limit))
    access.set(`${prefix}-Remaining`, sfInteger(info.remaining))
    const reset =
      options.legacy === 'x-ratelimit'
        ? info.resetAt === undefined
          ? undefined
          : Math.ceil(info.resetAt / 1000)
        : info.resetSeconds
    if (reset !== undefined) access.set(`${prefix}-Reset`, sfInteger(reset))
  }
}
