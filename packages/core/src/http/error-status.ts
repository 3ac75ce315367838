/**
 * The status an error thrown while answering a request stands for, as the frameworks read it:
 * its own `status` or `statusCode` when that is an error status (400 to 599), else 500. An
 * adapter sets it before handing the error on, so a status set earlier (the 429 of a refusal
 * whose `onExceeded` threw) is not what the client gets.
 *
 * @example
 * ```ts
 * errorStatus(new Error('boom')) // 500
 * errorStatus(Object.assign(new Error('teapot'), { statusCode: 418 })) // 418
 * ```
 */
export function errorStatus(error: unknown): number {
  const e = error as { status?: unknown; statusCode?: unknown } | null
  const status = typeof e?.status === 'number' ? e.status : typeof e?.statusCode === 'number' ? e.statusCode : 500
  return status >= 400 && status <= 599 ? status : 500
}
