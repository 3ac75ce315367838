import { describe, expect, it } from 'vitest'
import { keyGroup, randomKey } from '../src/index.js'

const hashTag = (key: string) => key.slice(key.indexOf('{') + 1, key.indexOf('}'))

describe('suite helpers', () => {
  it('randomKey gives every call its own hash-tag group', () => {
    const keys = Array.from({ length: 1000 }, () => randomKey())
    expect(new Set(keys.map(hashTag)).size).toBe(1000)
  })

  it('keyGroup keys are distinct and share one hash tag, so a Cluster store can apply them together', () => {
    const keys = keyGroup(3)
    expect(new Set(keys).size).toBe(3)
    expect(new Set(keys.map(hashTag)).size).toBe(1)
  })
})
