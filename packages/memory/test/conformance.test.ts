import { createMemoryStore } from '@andromeda/memory'
import { runStoreConformance } from '@andromeda/store-test-suite'

runStoreConformance({ name: 'memory', createStore: () => createMemoryStore() })
