/** Externally requested software upgrades of a long-running replicated client (DESIGN section 5). */
import { describe, expect, it } from 'vitest'
import { GroupSimulation, groupScenarioByName } from '../src/index.js'

function run(name: string, seed: number) {
  const s = groupScenarioByName(name)
  if (s === undefined) throw new Error(`no scenario ${name}`)
  return new GroupSimulation(s.build({ seed, f: 1 })).run()
}

describe('upgrades', () => {
  it.each([1, 2, 3, 4])('switch every correct replica at one point of the order under load, workflows and calls surviving (seed %i)', (seed) => {
    const r = run('replicated-upgrade', seed)
    expect(r.violations).toEqual([])
    expect(r.upgrades).toBe(4)
    expect(r.calls).toBe(r.expectedCalls)
  })

  it.each([1, 2, 3])('halt a replica without the code while the group runs on; it catches up once the code is installed (seed %i)', (seed) => {
    const r = run('replicated-upgrade-missing-code', seed)
    expect(r.violations).toEqual([])
    expect(r.halts).toBeGreaterThanOrEqual(1)
    expect(r.upgrades).toBe(3)
    expect(r.stateTransfers).toBeGreaterThanOrEqual(1)
    expect(r.calls).toBe(r.expectedCalls)
  })

  it.each([1, 2, 3])('refuse invalid requests and a Byzantine replica\'s own upgrade, changing nothing (seed %i)', (seed) => {
    const r = run('replicated-upgrade-invalid', seed)
    expect(r.violations).toEqual([])
    // 7 invalid submissions, each refused by all four replicas; then one valid upgrade applies once.
    expect(r.refusedUpgradeSubmissions).toBeGreaterThanOrEqual(7 * 3)
    expect(r.upgrades).toBe(3)
  })
})
