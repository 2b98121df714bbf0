/**
 * Named scenarios: each turns (seed, f) into one simulation's options. They read like the
 * sentences of the design: "the primary crashes under load", "a backup is partitioned long
 * enough that the others garbage-collect past it".
 */
import { BEHAVIOURS, behaviourByName, equivocate, silent, type Behaviour } from './adversary.js'
import type { NetworkFaults } from './network.js'
import { Prng } from '@bftrc/adversary'
import type { ScheduledAction, Simulation, SimulationOptions } from './simulation.js'

export interface ScenarioParams {
  readonly seed: number
  readonly f: number
  /** Overrides the scenario's total request count where it has one. */
  readonly requests?: number
}

export interface Scenario {
  readonly name: string
  readonly description: string
  /** Runs that must break safety (the negative Twins test) say so. */
  readonly expectViolations?: boolean
  build(p: ScenarioParams): SimulationOptions
}

const LOSSY: NetworkFaults = { dropRate: 0.05, duplicateRate: 0.05, minDelay: 1, maxDelay: 40 }
const MILD: NetworkFaults = { dropRate: 0.01, duplicateRate: 0.01, minDelay: 1, maxDelay: 10 }
const JITTER: NetworkFaults = { dropRate: 0, duplicateRate: 0, minDelay: 1, maxDelay: 5 }
/** Small checkpoint interval and window, so garbage collection and state transfer happen often. */
const SMALL_LOG = { checkpointInterval: 4, logWindow: 8 }

function n(f: number): number {
  return 3 * f + 1
}

function base(p: ScenarioParams, over: Partial<SimulationOptions>): SimulationOptions {
  return {
    seed: p.seed,
    f: p.f,
    clients: 4,
    requestsPerClient: 10,
    faults: JITTER,
    safetyDuration: 3_000,
    livenessTimeout: 60_000,
    ...over,
  }
}

/** Picks f distinct replica indices (never all of them) from the seed. */
function pickFaulty(p: ScenarioParams, includePrimary: boolean): number[] {
  const prng = new Prng(p.seed ^ 0x5eed)
  const all = Array.from({ length: n(p.f) }, (_, i) => i).filter((i) => includePrimary || i !== 0)
  const out: number[] = []
  while (out.length < p.f) {
    const i = prng.pick(all)
    if (!out.includes(i)) out.push(i)
  }
  if (includePrimary && !out.includes(0)) out[0] = 0
  return out
}

function byz(indices: readonly number[], b: (i: number) => Behaviour): Map<number, Behaviour> {
  return new Map(indices.map((i) => [i, b(i)]))
}

function at(time: number, run: (sim: Simulation) => void): ScheduledAction {
  return { at: time, run }
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'basic',
    description: 'failure-free, one client, sequential requests, every hop exactly one delay unit (1 ms)',
    build: (p) => base(p, { clients: 1, requestsPerClient: p.requests ?? 20, faults: { dropRate: 0, duplicateRate: 0, minDelay: 1, maxDelay: 1 }, safetyDuration: 0 }),
  },
  {
    name: 'batching',
    description: '24 concurrent clients: adaptive batching packs requests while earlier batches are in flight',
    build: (p) => base(p, { clients: 24, requestsPerClient: p.requests === undefined ? 10 : Math.ceil(p.requests / 24) }),
  },
  {
    name: 'lossy',
    description: '5% drops, 5% duplicates, delays 1-40 ms (reordering) for 10 s, then a stable network',
    build: (p) => base(p, { faults: LOSSY, safetyDuration: 10_000, requestsPerClient: p.requests === undefined ? 15 : Math.ceil(p.requests / 4) }),
  },
  {
    name: 'reorder',
    description: '20% duplicates and delays 1-100 ms: heavy reordering without loss',
    build: (p) => base(p, { faults: { dropRate: 0, duplicateRate: 0.2, minDelay: 1, maxDelay: 100 }, safetyDuration: 10_000 }),
  },
  {
    name: 'read-only',
    description: 'a third of the requests read-only (2f+1 matching replies, fall back to ordering) on a mildly lossy network',
    build: (p) => base(p, { faults: MILD, readOnlyRatio: 0.33, safetyDuration: 5_000 }),
  },
  {
    name: 'gc',
    description: 'checkpoints every 4 sequence numbers, 5% loss: garbage collection and watermarks under churn',
    build: (p) => base(p, { faults: LOSSY, replicaConfig: SMALL_LOG, safetyDuration: 8_000, requestsPerClient: 20 }),
  },
  {
    name: 'long',
    description: 'a long failure-free run (default 20k requests; --requests 100000 for the memory check)',
    build: (p) =>
      base(p, {
        clients: 16,
        requestsPerClient: Math.ceil((p.requests ?? 20_000) / 16),
        safetyDuration: 0,
        livenessTimeout: 100_000_000,
        sampleHeap: true,
      }),
  },
  {
    name: 'view-change',
    description: 'the primary is silent from the start, every hop one delay unit: measures the view change in message delays',
    build: (p) =>
      base(p, {
        clients: 1,
        requestsPerClient: p.requests ?? 5,
        faults: { dropRate: 0, duplicateRate: 0, minDelay: 1, maxDelay: 1 },
        safetyDuration: 0,
        byzantine: byz([0], () => silent),
      }),
  },
  {
    name: 'primary-crash',
    description: 'the primary crashes under load on a mildly lossy network; the others change view',
    build: (p) => base(p, { faults: MILD, safetyDuration: 8_000, schedule: [at(50, (s) => s.crash(0))], byzantine: byz([0], () => silent) }),
  },
  {
    name: 'primary-partition',
    description: 'the primary is cut off from every other replica for 4 s, then rejoins',
    build: (p) =>
      base(p, {
        faults: MILD,
        safetyDuration: 6_000,
        schedule: [
          at(50, (s) => s.network.partition([s.node(0).id], s.replicas.slice(1).map((r) => r.id))),
          at(4_000, (s) => s.network.heal()),
        ],
      }),
  },
  {
    name: 'equivocating-primary',
    description: 'the primary sends conflicting signed pre-prepares to odd and even backups',
    build: (p) => base(p, { faults: JITTER, byzantine: byz(pickFaulty(p, true), (i) => (i === 0 ? equivocate : silent)) }),
  },
  {
    name: 'twins',
    description: 'Twins: the primary runs as two instances with one key, each serving half of the group',
    build: (p) => {
      const sideA = new Set<string>(['g/1', 'c0', 'c1'])
      return base(p, { faults: JITTER, twins: { replicas: [0], sideA } })
    },
  },
  {
    name: 'twins-over-f',
    description: 'negative test: f+1 twins in a split network must produce a conflict the checkers catch',
    expectViolations: true,
    build: (p) => {
      const faulty = Array.from({ length: p.f + 1 }, (_, i) => i)
      const honest = Array.from({ length: n(p.f) }, (_, i) => i).filter((i) => !faulty.includes(i))
      const half = Math.ceil(honest.length / 2)
      const a = [...honest.slice(0, half).map((i) => `g/${i}`), 'c0', 'c1']
      const b = [...honest.slice(half).map((i) => `g/${i}`), 'c2', 'c3']
      return base(p, {
        faults: JITTER,
        twins: { replicas: faulty, sideA: new Set(a) },
        schedule: [at(0, (s) => s.network.partition(a, b))],
        expectLiveness: false,
        safetyDuration: 2_000,
        livenessTimeout: 1,
      })
    },
  },
  {
    name: 'silent-backup',
    description: 'f backups never send anything',
    build: (p) => base(p, { faults: MILD, byzantine: byz(pickFaulty(p, false), () => silent), safetyDuration: 5_000 }),
  },
  {
    name: 'byzantine-mix',
    description: 'f replicas (possibly the primary) each with a behaviour drawn by the seed: silent, equivocate, wrong results, forgery, inflated views, replays, garbage, floods',
    build: (p) => {
      const prng = new Prng(p.seed ^ 0xb12)
      const faulty = pickFaulty(p, prng.chance(0.5))
      return base(p, { faults: MILD, byzantine: byz(faulty, () => behaviourByName(prng.pick(BEHAVIOURS))), safetyDuration: 6_000 })
    },
  },
  {
    name: 'restart-disk',
    description: 'backups crash and restart from their disks, again and again, under load',
    build: (p) =>
      base(p, {
        faults: MILD,
        replicaConfig: SMALL_LOG,
        safetyDuration: 6_000,
        requestsPerClient: 20,
        schedule: [1, 2, 3].flatMap((k) => [at(k * 400, (s) => s.crash(k % n(p.f) || 1)), at(k * 400 + 250, (s) => s.restart(k % n(p.f) || 1))]),
      }),
  },
  {
    name: 'restart-no-disk',
    description: 'a backup loses its disk and restarts empty: it catches up by state transfer',
    build: (p) =>
      base(p, {
        faults: MILD,
        replicaConfig: SMALL_LOG,
        safetyDuration: 6_000,
        requestsPerClient: 20,
        schedule: [at(300, (s) => s.crash(1, true)), at(900, (s) => s.restart(1))],
      }),
  },
  {
    name: 'long-partition',
    description: 'a backup is partitioned away while the others run many checkpoints ahead, then must state-transfer',
    build: (p) =>
      base(p, {
        faults: JITTER,
        replicaConfig: SMALL_LOG,
        requestsPerClient: 30,
        safetyDuration: 8_000,
        schedule: [
          at(20, (s) => s.network.partition([s.node(n(p.f) - 1).id], s.replicas.slice(0, n(p.f) - 1).map((r) => r.id))),
          at(1_500, (s) => s.network.heal()),
        ],
      }),
  },
  {
    name: 'crash-all',
    description: 'every replica crashes at once under load and restarts from disk: no acknowledged request is lost',
    build: (p) =>
      base(p, {
        faults: MILD,
        replicaConfig: SMALL_LOG,
        requestsPerClient: 20,
        safetyDuration: 5_000,
        schedule: [
          at(400, (s) => {
            for (const r of s.replicas) s.crash(r.index)
          }),
          at(700, (s) => {
            for (const r of s.replicas) s.restart(r.index)
          }),
        ],
      }),
  },
  {
    name: 'diverged-views',
    description: 'f replicas are silent; a backup is cut off long enough to change view alone, then every replica restarts from disk: the views must meet again',
    build: (p) => {
      const prng = new Prng(p.seed ^ 0xd1e)
      const silentOnes = pickFaulty(p, prng.chance(0.5))
      const correct = Array.from({ length: n(p.f) }, (_, i) => i).filter((i) => !silentOnes.includes(i))
      const loner = prng.pick(correct.filter((i) => i !== 0))
      const healAt = prng.int(1_000, 4_000)
      return base(p, {
        faults: MILD,
        // A short, low-capped back-off makes replicas that drift apart reach the cap quickly.
        replicaConfig: { ...SMALL_LOG, viewChangeTimeout: 200, maxViewChangeTimeout: 800 },
        byzantine: byz(silentOnes, () => silent),
        safetyDuration: healAt + 2_000,
        schedule: [
          at(50, (s) => s.network.partition([s.node(loner).id], s.replicas.filter((r) => r.index !== loner).map((r) => r.id))),
          at(healAt, (s) => s.network.heal()),
          at(healAt + prng.int(300, 800), (s) => {
            for (const i of correct) s.crash(i)
          }),
          at(healAt + 1_000, (s) => {
            for (const i of correct) s.restart(i)
          }),
        ],
      })
    },
  },
]

export function scenarioByName(name: string): Scenario | undefined {
  return SCENARIOS.find((s) => s.name === name)
}
