import { type SqlNames, sqlNames } from '../names.js'

export const quote = (identifier: string) => `"${identifier}"`

/** The table and functions of one store, qualified with the schema. */
export const postgresNames = (schema: string, table: string): SqlNames =>
  sqlNames(table, (name) => `${quote(schema)}.${quote(name)}`)
