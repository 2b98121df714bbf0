/**
 * A primary that is merely slow: the backups replace it beyond their ordering allowance, and below
 * it, it costs each request at most that allowance (performance isolation against the same seed
 * with an honest primary, with the allowance added per request). The seeds draw delays from 2 ms
 * to 3 s.
 */
import { describe, expect, it } from 'vitest'
import { groupScenarioByName } from '../src/index.js'
import { DELAY_PER_REQUEST } from '../src/groups/slow-primary-scenarios.js'
import { runGroupSeed } from '../src/paired.js'

const SEEDS = Number(process.env.BFTRC_SLOW_SEEDS ?? 10)

function delaysOf(scenario: string, seed: number): number[] {
  const s = groupScenarioByName(scenario) as NonNullable<ReturnType<typeof groupScenarioByName>>
  return s.build({ seed, f: 1 }).groups.map((g) => Number(/(\d+)ms/.exec(g.byzantine?.get(0)?.name ?? '')?.[1]))
}

describe.each(['slow-primary', 'replicated-slow-primary'])('%s', (scenario) => {
  it(`replaces a primary slower than the allowance and bounds the cost of one below it, over ${SEEDS} seeds`, () => {
    const replaced: number[] = []
    const kept: number[] = []
    for (let seed = 1; seed <= SEEDS; seed++) {
      const outcome = runGroupSeed(scenario, seed, 1)
      expect(outcome.violations.map((v) => `seed ${seed}: ${v.invariant}: ${v.detail.slice(0, 300)}`)).toEqual([])
      const slowest = Math.max(...delaysOf(scenario, seed))
      if (outcome.result.viewChanges > 0) replaced.push(slowest)
      else kept.push(slowest)
      // Far beyond the allowance, the slow primary must be gone.
      if (slowest >= 3 * DELAY_PER_REQUEST) expect(outcome.result.viewChanges, `seed ${seed}: delay ${slowest} ms`).toBeGreaterThan(0)
    }
    // The seeds cover both sides of the allowance.
    expect(replaced.length).toBeGreaterThan(0)
    expect(kept.length).toBeGreaterThan(0)
  }, 300_000)
})
