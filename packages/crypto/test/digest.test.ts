import { describe, expect, it } from 'vitest'
import { sha256, sha256Parts } from '../src/index.js'

describe('sha256Parts', () => {
  it('is the SHA-256 of the concatenation, whatever the cut', () => {
    const whole = Uint8Array.from({ length: 100 }, (_, i) => (i * 7) & 0xff)
    const expected = sha256(whole)
    for (const cuts of [[], [0], [1], [50], [0, 100], [3, 3, 99]]) {
      const parts: Uint8Array[] = []
      let at = 0
      for (const c of cuts) {
        parts.push(whole.subarray(at, c))
        at = c
      }
      parts.push(whole.subarray(at))
      expect(sha256Parts(parts)).toEqual(expected)
    }
    expect(sha256Parts([])).toEqual(sha256(new Uint8Array(0)))
  })
})
