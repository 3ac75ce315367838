import { NotSentError } from './driver.js'

/**
 * A driver's own connection pool, opened on first use (the database client is imported then, so
 * a store on one dialect never loads the other's) and never after `close`.
 */
export interface LazyPool<Settings, Pool> {
  readonly settings: Settings
  pool: Pool | undefined
  opening: Promise<Pool> | undefined
  closed: boolean
}

export function lazyPool<Settings, Pool>(settings: Settings): LazyPool<Settings, Pool> {
  return { settings, pool: undefined, opening: undefined, closed: false }
}

/**
 * The pool, opened once however many calls ask at the same time. `prepare` loads the client and
 * reads the settings; the pool it returns is made only if the store was not closed meanwhile.
 */
export function openPool<Settings, Pool>(
  p: LazyPool<Settings, Pool>,
  prepare: (settings: Settings) => Promise<() => Pool>,
): Promise<Pool> {
  if (p.pool) return Promise.resolve(p.pool)
  p.opening ??= (async () => {
    const create = await prepare(p.settings)
    if (p.closed) throw new NotSentError('the store is closed')
    const created = create()
    p.pool = created
    return created
  })().finally(() => {
    p.opening = undefined
  })
  return p.opening
}

/** No pool opens after this; one that is opening or open is ended. */
export async function closeLazyPool<Settings, Pool>(
  p: LazyPool<Settings, Pool>,
  end: (pool: Pool) => Promise<void>,
): Promise<void> {
  p.closed = true
  await p.opening?.catch(() => {})
  const pool = p.pool
  p.pool = undefined
  if (pool) await end(pool)
}
