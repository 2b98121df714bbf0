/**
 * Replicated clients calling replicated servers (DESIGN section 5), over the simulator.
 */
import { describe, expect, it } from 'vitest'
import { GROUP_SCENARIOS, GroupSimulation, RegisterApp, groupScenarioByName, runGroupCampaign, wrongReply } from '../src/index.js'
import { SEEDS } from './helpers.js'

function failures(r: ReturnType<typeof runGroupCampaign>): string {
  return r.violations
    .slice(0, 5)
    .map((v) => `seed ${v.seed}: ${v.invariant}: ${v.detail.slice(0, 400)}`)
    .join('\n')
}

describe('failure-free replicated call (replicated-basic)', () => {
  it('takes 8 message delays and 56 messages for f = 1, under twice CLBFT with a plain client', () => {
    const r = runGroupCampaign({ scenario: 'replicated-basic', seeds: 2 })
    expect(failures(r)).toBe('')
    expect(r.completedCalls).toBe(r.expectedCalls)
    expect(r.delaysPerCall).toBe(8)
    expect(r.messagesPerCall).toBe(56)
    expect(r.interGroupMessagesPerCall).toBe(8)
    expect(r.messagesByTypePerCall).toEqual({ 'request-share': 4, 'pre-prepare': 6, prepare: 18, commit: 24, 'reply-share': 4 })
    expect(r.ratios.messages).toBeLessThan(2)
  })

  it.each([2, 3, 5, 7, 10])('stays at 8 delays with linear inter-group messages for f = %i in both groups', (f) => {
    const r = runGroupCampaign({ scenario: 'replicated-basic', seeds: 1, f, requests: 2 })
    expect(failures(r)).toBe('')
    expect(r.delaysPerCall).toBe(8)
    expect(r.interGroupMessagesPerCall).toBe(2 * (3 * f + 1))
    expect(r.messagesPerCall).toBeLessThanOrEqual(2 * r.baseline.messagesPerRequest)
  })
})

// The generated adversaries' scenarios run in byzantine-fuzz.test.ts (paired runs, worker threads, a watchdog).
describe.each(GROUP_SCENARIOS.filter((s) => s.name !== 'replicated-basic' && s.pairedBaseline !== true).map((s) => s.name))('scenario %s', (name) => {
  it(`keeps group consistency, validity and exactly-once over ${Math.max(2, Math.floor(SEEDS / 2))} seeds`, () => {
    const r = runGroupCampaign({ scenario: name, seeds: Math.max(2, Math.floor(SEEDS / 2)) })
    expect(failures(r)).toBe('')
    if (name !== 'replicated-isolation-server') expect(r.completedCalls).toBe(r.expectedCalls)
  })
})

describe('replicated scenarios with f = 2', () => {
  it.each(['replicated-byzantine-both', 'replicated-lossy', 'replicated-nested'])('%s holds', (name) => {
    const r = runGroupCampaign({ scenario: name, seeds: 1, f: 2 })
    expect(failures(r)).toBe('')
    expect(r.completedCalls).toBe(r.expectedCalls)
  })
})

describe('the checkers are known to work', () => {
  it('flag wrong results when more than f server replicas collude and the server is counted as correct', () => {
    const scenario = groupScenarioByName('replicated-isolation-server')
    if (scenario === undefined) throw new Error('missing scenario')
    const options = scenario.build({ seed: 3, f: 1 })
    const groups = options.groups.map((g) => (g.name === 'server' ? { name: 'server', f: 1, app: () => new RegisterApp(), byzantine: new Map([[1, wrongReply], [2, wrongReply]]) } : g))
    const r = new GroupSimulation({ ...options, groups }).run()
    expect(r.violations.some((v) => v.invariant === 'validity')).toBe(true)
  })
})

describe('failure-free calls between groups of different sizes', () => {
  const sizes = [1, 2, 5, 10]
  const grid = sizes.flatMap((fc) => sizes.map((fs) => [fc, fs] as const))
  it.each(grid)('take 8 delays with n_c + n_s inter-group messages for f_c = %i, f_s = %i', (fc, fs) => {
    const base = (groupScenarioByName('replicated-basic') as NonNullable<ReturnType<typeof groupScenarioByName>>).build({ seed: 5, f: 1, calls: 2 })
    const groups = base.groups.map((g) => ({ ...g, f: g.name === 'client' ? fc : fs }))
    const r = new GroupSimulation({ ...base, groups }).run()
    expect(r.violations).toEqual([])
    expect(r.calls).toBe(2)
    expect(r.meanCallLatency).toBe(8)
    expect(r.interGroupMessages / r.calls).toBe(3 * fc + 1 + 3 * fs + 1)
  })
})
