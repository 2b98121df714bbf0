import { describe, expect, it } from 'vitest'
import { BEHAVIOURS, Simulation, behaviourByName, scenarioByName } from '../src/index.js'
import { campaign, failures } from './helpers.js'

describe('Twins', () => {
  it('catches the conflict when more than f replicas are twinned (the checker is known to work)', () => {
    const r = campaign('twins-over-f', 4)
    expect(r.failingSeeds).toEqual([1, 2, 3, 4])
    expect(r.violations.some((v) => v.invariant === 'agreement' || v.invariant === 'validity')).toBe(true)
  })

  it('stays safe and live with one twinned primary (f = 1)', () => {
    const r = campaign('twins', 4)
    expect(failures(r)).toBe('')
  })
})

describe.each(BEHAVIOURS)('one Byzantine replica that behaves "%s"', (name) => {
  it.each([0, 2])('as replica %i keeps every invariant', (index) => {
    const base = (scenarioByName('lossy') as NonNullable<ReturnType<typeof scenarioByName>>).build({ seed: 11 + index, f: 1 })
    const r = new Simulation({ ...base, faults: { dropRate: 0.01, duplicateRate: 0.01, minDelay: 1, maxDelay: 10 }, safetyDuration: 3_000, byzantine: new Map([[index, behaviourByName(name)]]) }).run()
    expect(r.violations).toEqual([])
    expect(r.completedRequests).toBe(r.expectedRequests)
  })
})
