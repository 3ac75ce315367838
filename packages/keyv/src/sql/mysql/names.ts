/**
 * Version of the procedures; part of their names, so an upgrade adds new ones beside. v2: apply
 * revokes the loads of counters its give-backs meet missing, and seed takes the load's lock.
 */
const VERSION = 'v2'

/** The quoted names of the table and procedures of one store. */
export interface MysqlNames {
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

export const quote = (identifier: string) => `\`${identifier}\``

export function mysqlNames(table: string): MysqlNames {
  return {
    table: quote(table),
    holds: quote(`${table}_holds`),
    apply: quote(`${table}_apply_${VERSION}`),
    get: quote(`${table}_get_${VERSION}`),
    seed: quote(`${table}_seed_${VERSION}`),
    set: quote(`${table}_set_${VERSION}`),
    delete: quote(`${table}_delete_${VERSION}`),
    acquireLock: quote(`${table}_lock_${VERSION}`),
    releaseLock: quote(`${table}_unlock_${VERSION}`),
  }
}
