/**
 * The seeded campaign: every scenario over SEEDS seeds (BFTRC_SIM_SEEDS to raise it) must keep
 * every invariant, and every request of a correct client must complete after stabilisation.
 */
import { describe, expect, it } from 'vitest'
import { SCENARIOS } from '../src/index.js'
import { SEEDS, campaign, failures } from './helpers.js'

const SKIP_IN_CAMPAIGN = new Set(['long', 'twins-over-f'])

describe.each(SCENARIOS.filter((s) => !SKIP_IN_CAMPAIGN.has(s.name)).map((s) => s.name))('scenario %s', (name) => {
  it(`holds every invariant over ${SEEDS} seeds with f = 1`, () => {
    const r = campaign(name)
    expect(failures(r)).toBe('')
    expect(r.completedRequests).toBe(r.expectedRequests)
  })
})

describe.each(['lossy', 'byzantine-mix', 'equivocating-primary', 'long-partition'])('scenario %s with f = 2', (name) => {
  it('holds every invariant', () => {
    const r = campaign(name, Math.max(2, Math.floor(SEEDS / 4)), 2)
    expect(failures(r)).toBe('')
    expect(r.completedRequests).toBe(r.expectedRequests)
  })
})
