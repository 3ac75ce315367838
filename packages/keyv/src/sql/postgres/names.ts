/**
 * Version of the functions; part of their names, so an upgrade adds new ones beside. v2: apply
 * revokes the loads of counters its give-backs meet missing, and seed takes the load's lock.
 */
const VERSION = 'v2'

/** The quoted, schema-qualified names of the table and functions of one store. */
export interface PostgresNames {
  /** Schema-qualified, quoted table name. */
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

export const quote = (identifier: string) => `"${identifier}"`

export function postgresNames(schema: string, table: string): PostgresNames {
  const qualified = (name: string) => `${quote(schema)}.${quote(name)}`
  return {
    table: qualified(table),
    holds: qualified(`${table}_holds`),
    apply: qualified(`${table}_apply_${VERSION}`),
    get: qualified(`${table}_get_${VERSION}`),
    seed: qualified(`${table}_seed_${VERSION}`),
    set: qualified(`${table}_set_${VERSION}`),
    delete: qualified(`${table}_delete_${VERSION}`),
    acquireLock: qualified(`${table}_lock_${VERSION}`),
    releaseLock: qualified(`${table}_unlock_${VERSION}`),
  }
}
