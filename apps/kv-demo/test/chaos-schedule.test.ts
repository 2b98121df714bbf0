/**
 * The chaos fault schedule: deterministic per seed, never more than f faulty replicas of a
 * group at once, every episode within the run and within its kind's bounds, and a crash and a
 * partition in every run of 20 s or more.
 */
import { describe, expect, it } from 'vitest'
import { type ChaosEpisode, type ChaosGroup, EPISODE_KINDS, TIMING, chaosPlan, maxFaultyAtOnce } from '../src/chaos-schedule.js'

function group(name: string, n: number): ChaosGroup {
  return { name, members: Array.from({ length: n }, (_, i) => `${name}/${i}`), maxFaulty: (n - 1) / 3 }
}

const SHAPES: ReadonlyArray<readonly ChaosGroup[]> = [
  [group('kv', 4), group('bank', 4)],
  [group('kv', 7), group('bank', 4)],
  [group('kv', 10), group('bank', 13)],
]
const SEEDS = Array.from({ length: 200 }, (_, i) => i * 7919 + 3)

/** Replicas of `group` faulty at time t. */
function faultyAt(plan: readonly ChaosEpisode[], g: string, t: number): string[] {
  return plan.filter((e) => e.group === g && e.at <= t && t < e.at + e.length).map((e) => e.replica)
}

describe('chaos schedule', () => {
  it('is the same for the same seed and input, and differs across seeds', () => {
    const groups = SHAPES[0] as readonly ChaosGroup[]
    const a = chaosPlan({ seed: 42, durationSeconds: 180, groups })
    expect(chaosPlan({ seed: 42, durationSeconds: 180, groups })).toEqual(a)
    expect(chaosPlan({ seed: 43, durationSeconds: 180, groups })).not.toEqual(a)
    const distinct = new Set(SEEDS.slice(0, 50).map((seed) => JSON.stringify(chaosPlan({ seed, durationSeconds: 60, groups }))))
    expect(distinct.size).toBe(50)
  })

  it('never has more than f replicas of a group faulty at once, nor one replica in two overlapping episodes', () => {
    const violations: string[] = []
    let checked = 0
    for (const groups of SHAPES) {
      for (const seed of SEEDS) {
        for (const durationSeconds of [20, 45, 180, 900]) {
          const plan = chaosPlan({ seed, durationSeconds, groups })
          for (const g of groups) {
            if (maxFaultyAtOnce(plan, g.name) > g.maxFaulty) violations.push(`seed ${seed} ${durationSeconds} s: ${g.name} over f`)
            // Checked at every start and just before every end as well, with the replicas named.
            for (const e of plan.filter((x) => x.group === g.name)) {
              for (const t of [e.at, e.at + e.length - 0.05]) {
                const now = faultyAt(plan, g.name, t)
                checked++
                if (now.length > g.maxFaulty || new Set(now).size !== now.length) violations.push(`seed ${seed} ${durationSeconds} s at ${t}: ${now.join(', ')}`)
              }
            }
          }
        }
      }
    }
    expect(violations).toEqual([])
    expect(checked).toBeGreaterThan(10_000)
  })

  it('with f = 3, three replicas of a group are faulty at once at some point (the slots really overlap)', () => {
    const groups = [group('kv', 10), group('bank', 4)]
    const most = Math.max(...SEEDS.slice(0, 20).map((seed) => maxFaultyAtOnce(chaosPlan({ seed, durationSeconds: 300, groups }), 'kv')))
    expect(most).toBe(3)
  })

  it('keeps every episode inside the run, within its kind’s length, on a member of its group, in order of start', () => {
    for (const seed of SEEDS.slice(0, 40)) {
      const groups = SHAPES[1] as readonly ChaosGroup[]
      const plan = chaosPlan({ seed, durationSeconds: 120, groups })
      for (const e of plan) {
        expect(EPISODE_KINDS).toContain(e.kind)
        expect(e.at).toBeGreaterThanOrEqual(TIMING.firstStart[0])
        expect(e.at + e.length).toBeLessThanOrEqual(120 - TIMING.endMargin + 1e-9)
        const [lo, hi] = TIMING[e.kind]
        expect(e.length).toBeGreaterThanOrEqual(lo)
        expect(e.length).toBeLessThanOrEqual(hi)
        expect(groups.find((g) => g.name === e.group)?.members).toContain(e.replica)
        expect(e.slot).toBeLessThan(groups.find((g) => g.name === e.group)?.maxFaulty as number)
      }
      expect(plan.map((e) => e.at)).toEqual([...plan.map((e) => e.at)].sort((x, y) => x - y))
      // Episodes of one slot follow each other with at least the minimum gap.
      for (const e of plan) {
        const next = plan.find((o) => o.group === e.group && o.slot === e.slot && o.at > e.at)
        if (next !== undefined) expect(next.at - (e.at + e.length)).toBeGreaterThanOrEqual(TIMING.gap[0] - 0.1)
      }
    }
  })

  it('has at least one crash and one partition in every run of 20 s or more, and all three kinds in long runs', () => {
    for (const seed of SEEDS) {
      for (const durationSeconds of [20, 30, 45]) {
        const kinds = chaosPlan({ seed, durationSeconds, groups: SHAPES[0] as readonly ChaosGroup[] }).map((e) => e.kind)
        expect(kinds, `seed ${seed}, ${durationSeconds} s`).toContain('crash')
        expect(kinds, `seed ${seed}, ${durationSeconds} s`).toContain('partition')
      }
    }
    const long = chaosPlan({ seed: 7, durationSeconds: 600, groups: SHAPES[0] as readonly ChaosGroup[] })
    expect(new Set(long.map((e) => e.kind))).toEqual(new Set(EPISODE_KINDS))
    // Every replica of both groups is hit at some point over ten minutes.
    expect(new Set(long.map((e) => e.replica)).size).toBe(8)
  })
})
