import { createHash } from 'node:crypto'
import { APPLY_LUA } from './apply.js'
import { BATCH_LUA } from './batch.js'
import { DELETE_LUA } from './delete.js'
import { ACQUIRE_LOCK_LUA, RELEASE_LOCK_LUA } from './locks.js'
import { SEED_LUA } from './seed.js'
import { SET_LUA } from './set.js'

/** A script with its SHA1, the name EVALSHA knows it by. */
export interface Script {
  readonly name: string
  readonly lua: string
  readonly sha: string
}

function script(name: string, lua: string): Script {
  return { name, lua, sha: createHash('sha1').update(lua).digest('hex') }
}

/** Every script the store sends, by the contract method it serves. */
export const SCRIPTS = {
  batch: script('batch', BATCH_LUA),
  apply: script('apply', APPLY_LUA),
  seed: script('seed', SEED_LUA),
  set: script('set', SET_LUA),
  delete: script('delete', DELETE_LUA),
  acquireLock: script('acquireLock', ACQUIRE_LOCK_LUA),
  releaseLock: script('releaseLock', RELEASE_LOCK_LUA),
} as const
