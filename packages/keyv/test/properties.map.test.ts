import { createManualClock, runStoreProperties } from '@andromeda/store-test-suite'
import Keyv from 'keyv'
import { createKeyvStore } from '../src/index.js'

// The store and the engine read one manual clock, so runs cross TTLs and periods without waiting.
const clock = createManualClock()
runStoreProperties({
  name: 'keyv (Map)',
  clock,
  createStore: () => createKeyvStore({ keyv: new Keyv(), clock: clock.now }),
})
