import { type SqlNames, sqlNames } from '../names.js'

export const quote = (identifier: string) => `\`${identifier}\``

/** The table and procedures of one store, in the database the connection opened. */
export const mysqlNames = (table: string): SqlNames => sqlNames(table, quote)
