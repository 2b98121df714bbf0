/**
 * The generated adversary (f members of each group, Byzantine clients) alongside partitions,
 * crashes, state transfers and an upgrade: every seed keeps safety and liveness, bounded work per
 * input, bounded memory, and performance isolation and bounded amplification against the same
 * seed without the adversaries. Seeds run in worker threads under a watchdog, so a hang fails
 * with its seed instead of stopping the run. BFTRC_FUZZ_SEEDS raises the count.
 */
import { describe, expect, it } from 'vitest'
import { GroupSimulation, groupScenarioByName } from '../src/index.js'
import { runPool } from '../src/campaign-pool.js'
import { poolFigures } from '../src/pool-figures.js'

const SEEDS = Number(process.env.BFTRC_FUZZ_SEEDS ?? 3)

describe.each(['byzantine-fuzz', 'replicated-byzantine-fuzz'])('%s', (scenario) => {
  it(`holds every checker over ${SEEDS} seeds (safety, liveness, work per input, memory, isolation, amplification)`, async () => {
    const report = await runPool({ scenario, seeds: SEEDS, workers: 2, seedTimeoutMs: 180_000 })
    const failures = report.violations.slice(0, 5).map((v) => `seed ${v.seed}: ${v.invariant}: ${v.detail.slice(0, 300)}`)
    expect(failures.join('\n')).toBe('')
    const figures = poolFigures(report)
    expect(figures.hangs).toBe(0)
    expect(figures.generatedFrames).toBeGreaterThan(1_000)
    expect(figures.isolation).toBeDefined()
  }, 600_000)
})

describe('the generated member', () => {
  it('sends every message type of every layer in one run', () => {
    const s = groupScenarioByName('replicated-byzantine-fuzz') as NonNullable<ReturnType<typeof groupScenarioByName>>
    const r = new GroupSimulation(s.build({ seed: 1, f: 1 })).run()
    const kinds = Object.keys(r.generated).sort()
    for (const t of ['status', 'prepare', 'commit', 'checkpoint', 'executed', 'pre-prepare', 'view-change', 'new-view', 'stable', 'fetch-state', 'state-chunk', 'proposal', 'request', 'reply', 'request-share', 'reply-share', 'replay', 'splice', 'malformed']) {
      expect(kinds, t).toContain(`gen.${t}`)
    }
    expect(kinds).toContain('gen.client-request')
  })
})
