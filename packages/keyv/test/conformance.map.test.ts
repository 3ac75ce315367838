import { runStoreConformance } from '@andromeda/store-test-suite'
import Keyv from 'keyv'
import { createKeyvStore } from '../src/index.js'

// Keyv's default adapter: a Map in this process; its size is what the store keeps.
const maps = new WeakMap<object, Map<unknown, unknown>>()
runStoreConformance({
  name: 'keyv (Map)',
  createStore: () => {
    const keyv = new Keyv()
    const store = createKeyvStore({ keyv })
    maps.set(store, keyv.store as Map<unknown, unknown>)
    return store
  },
  size: (store) => maps.get(store)!.size,
})
