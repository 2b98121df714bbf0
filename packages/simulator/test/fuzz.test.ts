import { describe, expect, it } from 'vitest'
import { fuzz } from '../src/fuzz.js'

describe('fuzzing every decoder and handler (bounded; `pnpm fuzz` runs 100k per target)', () => {
  it('never crashes, never changes replica state, counts every drop', () => {
    const r = fuzz(7, Number(process.env.BFTRC_FUZZ_INPUTS ?? 3_000))
    for (const t of r.targets) expect(t.firstCrash ?? '', t.target).toBe('')
    expect(r.targets.every((t) => t.inputs > 0)).toBe(true)
    expect(r.stateUnchanged).toBe(true)
    expect(r.dropsCounted.replica).toBeGreaterThan(0)
    expect(r.dropsCounted.voter).toBeGreaterThan(0)
    expect(r.maxSizes.log ?? 0).toBeLessThanOrEqual(128)
  })
})
