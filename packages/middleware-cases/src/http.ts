/** One answer, read whole. */
export interface Answer {
  status: number
  headers: Headers
  text: string
  /** The body parsed as JSON (throws when it is not JSON). */
  json(): any
}

/** Send one request over real HTTP and read the whole answer. */
export async function call(
  url: string,
  init: { method?: string; headers?: Record<string, string>; signal?: AbortSignal } = {},
): Promise<Answer> {
  const response = await fetch(url, {
    method: init.method ?? 'GET',
    headers: init.headers ?? {},
    ...(init.signal ? { signal: init.signal } : {}),
  })
  const text = await response.text()
  return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) }
}
