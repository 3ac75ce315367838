/**
 * Version of the routines; part of their names, so an upgrade adds new ones beside. v2: apply
 * revokes the loads of counters its give-backs meet missing, and seed takes the load's lock.
 */
const VERSION = 'v2'

/** The quoted (on PostgreSQL, schema-qualified) names of the tables and routines of one store. */
export interface SqlNames {
  /** The counters (and idempotency records and locks). */
  table: string
  /** The holds (reservations) of the counters. */
  holds: string
  apply: string
  get: string
  seed: string
  set: string
  delete: string
  acquireLock: string
  releaseLock: string
}

/** The names of one store's tables and routines, each put through the dialect's `quoted`. */
export function sqlNames(table: string, quoted: (name: string) => string): SqlNames {
  return {
    table: quoted(table),
    holds: quoted(`${table}_holds`),
    apply: quoted(`${table}_apply_${VERSION}`),
    get: quoted(`${table}_get_${VERSION}`),
    seed: quoted(`${table}_seed_${VERSION}`),
    set: quoted(`${table}_set_${VERSION}`),
    delete: quoted(`${table}_delete_${VERSION}`),
    acquireLock: quoted(`${table}_lock_${VERSION}`),
    releaseLock: quoted(`${table}_unlock_${VERSION}`),
  }
}
