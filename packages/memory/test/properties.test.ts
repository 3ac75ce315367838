import { createMemoryStore } from '@andromeda/memory'
import { createManualClock, runStoreProperties } from '@andromeda/store-test-suite'

// The store and the engine read one manual clock, so runs cross TTLs and periods without waiting.
const clock = createManualClock()
runStoreProperties({ name: 'memory', clock, createStore: () => createMemoryStore({ clock: clock.now }) })
