import { runStoreConformance } from '@andromeda/store-test-suite'
import Keyv from 'keyv'
import { createKeyvStore } from '../src/index.js'

// Keyv's default adapter: a Map in this process.
runStoreConformance({ name: 'keyv (Map)', createStore: () => createKeyvStore({ keyv: new Keyv() }) })
